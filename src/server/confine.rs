//! Keeping every read inside the served directory: a path is used only when, with every
//! symlink resolved, it still lies under the (canonical) root. The listing, the details, the
//! tables, the series and the logs all go through here, so a symlinked experiment directory, a
//! symlinked `status.json` or a symlinked table that leads elsewhere is never read. Names taken
//! from a request go through [`confined`], which also refuses anything but plain names.

use std::path::{Component, Path, PathBuf};

use super::reply::Reply;

/// Where a path leads.
#[derive(Debug)]
pub(crate) enum Place {
    /// Inside the root: the resolved path, to open instead of the given one.
    Inside(PathBuf),
    /// Outside the root (through a symlink).
    Outside,
    /// Nothing there, or it cannot be resolved.
    Missing,
}

/// Resolves `path` and says whether it stays under `root`, which must be canonical.
///
/// The common case costs one `lstat` per component below `root` (the listing does this for
/// every experiment): a path under the canonical root whose components are plain names and no
/// symlinks is already canonical. Anything else is resolved in full.
pub(crate) fn place(root: &Path, path: &Path) -> Place {
    if let Ok(rest) = path.strip_prefix(root) {
        let mut at = root.to_path_buf();
        let mut plain = true;
        for component in rest.components() {
            let Component::Normal(name) = component else {
                plain = false;
                break;
            };
            at.push(name);
            match std::fs::symlink_metadata(&at) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    plain = false;
                    break;
                }
                Ok(_) => {}
                Err(_) => return Place::Missing,
            }
        }
        if plain {
            return Place::Inside(at);
        }
    }
    match path.canonicalize() {
        Ok(real) if real.starts_with(root) => Place::Inside(real),
        Ok(_) => Place::Outside,
        Err(_) => Place::Missing,
    }
}

/// `path` resolved, if it exists and stays under `root`.
pub(crate) fn inside(root: &Path, path: &Path) -> Option<PathBuf> {
    match place(root, path) {
        Place::Inside(real) => Some(real),
        Place::Outside | Place::Missing => None,
    }
}

/// Joins `parts` under `root` and checks that the result, with symlinks resolved, stays there.
pub(crate) fn confined(root: &Path, parts: &[&str]) -> Result<PathBuf, Reply> {
    let mut path = root.to_path_buf();
    for part in parts {
        let single = Path::new(part).components().count() == 1
            && matches!(
                Path::new(part).components().next(),
                Some(Component::Normal(_))
            );
        if !single || part.starts_with('.') || part.contains('\0') {
            return Err(Reply::error(
                400,
                format!("{part:?} is not a plain name inside the experiments directory"),
            ));
        }
        path.push(part);
    }
    // `root` is canonical (Server::start resolved it).
    match place(root, &path) {
        Place::Inside(real) => Ok(real),
        Place::Outside => Err(Reply::error(
            403,
            format!(
                "{} leads outside the experiments directory (a symlink); it is not served",
                parts.join("/")
            ),
        )),
        Place::Missing => Err(Reply::error(
            404,
            format!("{} does not exist", parts.join("/")),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_are_followed_only_while_they_stay_inside() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::write(root.join("a/file"), "x").unwrap();
        std::fs::write(tmp.path().join("secret"), "x").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("secret"), root.join("a/out")).unwrap();
        std::os::unix::fs::symlink(root.join("a"), root.join("alias")).unwrap();
        std::os::unix::fs::symlink(tmp.path(), root.join("up")).unwrap();
        let root = root.canonicalize().unwrap();
        assert!(matches!(
            place(&root, &root.join("a/file")),
            Place::Inside(_)
        ));
        assert!(matches!(
            place(&root, &root.join("alias/file")),
            Place::Inside(_)
        ));
        assert!(matches!(place(&root, &root.join("a/out")), Place::Outside));
        assert!(matches!(
            place(&root, &root.join("up/secret")),
            Place::Outside
        ));
        assert!(matches!(place(&root, &root.join("a/none")), Place::Missing));
        assert!(inside(&root, &root.join("../secret")).is_none());
        assert!(inside(&root, &root.join("a/../../secret")).is_none());
        assert!(matches!(
            place(&root, &root.join("a/./file")),
            Place::Inside(_)
        ));
    }
}

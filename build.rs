//! Gives libexpman.so a SONAME, so a program linked against it by path records `libexpman.so`
//! (found through the usual search path) rather than the path it was built at.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libexpman.so");
    }
}

//! M4 over a bucket in less than a pass over its rows: the smallest and largest drawable value
//! of every block of [`BLOCK`] rows are found once per series (and kept with the other derived
//! arrays), so a bucket costs its two partial blocks plus one comparison per whole block.

/// Rows per block.
const BLOCK: usize = 64;
/// No drawable value in the block.
const NONE: u32 = u32::MAX;

/// Whether `v` can be drawn (finite, and positive on a log axis).
fn drawable(v: f64, log_y: bool) -> bool {
    v.is_finite() && !(log_y && v <= 0.0)
}

/// Per block of a series: where its smallest and largest drawable values are, and whether it
/// holds a gap.
pub(crate) struct Blocks {
    min: Vec<u32>,
    max: Vec<u32>,
    gap: Vec<bool>,
    log_y: bool,
}

/// What a scan has found so far.
#[derive(Default)]
struct Extremes {
    min: Option<(f64, usize)>,
    max: Option<(f64, usize)>,
    gaps: bool,
}

impl Extremes {
    /// Takes `v` at `j`; the earliest of equal values stays.
    fn take(&mut self, v: f64, j: usize) {
        if self.min.is_none_or(|(m, _)| v < m) {
            self.min = Some((v, j));
        }
        if self.max.is_none_or(|(m, _)| v > m) {
            self.max = Some((v, j));
        }
    }

    fn scan(&mut self, values: &[f64], lo: usize, hi: usize, log_y: bool) {
        for (j, &v) in values.iter().enumerate().take(hi).skip(lo) {
            if drawable(v, log_y) {
                self.take(v, j);
            } else {
                self.gaps = true;
            }
        }
    }
}

impl super::columns::Weigh for Blocks {
    fn bytes(&self) -> usize {
        self.min.len() * 9
    }
}

impl Blocks {
    /// The blocks of `values` (positions fit in `u32`: tables are at most 256 MiB).
    pub(crate) fn new(values: &[f64], log_y: bool) -> Blocks {
        let n = values.len().div_ceil(BLOCK);
        let mut blocks = Blocks {
            min: Vec::with_capacity(n),
            max: Vec::with_capacity(n),
            gap: Vec::with_capacity(n),
            log_y,
        };
        for start in (0..values.len()).step_by(BLOCK) {
            let mut found = Extremes::default();
            found.scan(values, start, (start + BLOCK).min(values.len()), log_y);
            blocks.min.push(found.min.map_or(NONE, |(_, j)| j as u32));
            blocks.max.push(found.max.map_or(NONE, |(_, j)| j as u32));
            blocks.gap.push(found.gaps);
        }
        blocks
    }

    /// Pushes the positions of the first, last, smallest and largest drawable value of
    /// `values[a..e]` (nothing when there is none); says whether the range holds a gap.
    pub(crate) fn m4(&self, values: &[f64], a: usize, e: usize, out: &mut Vec<usize>) -> bool {
        let log_y = self.log_y;
        let Some(first) = (a..e).find(|&j| drawable(values[j], log_y)) else {
            return e > a;
        };
        let last = (a..e)
            .rev()
            .find(|&j| drawable(values[j], log_y))
            .unwrap_or(first);
        let mut found = Extremes {
            gaps: first > a || last + 1 < e,
            ..Extremes::default()
        };
        let (whole_from, whole_to) = (first.div_ceil(BLOCK), (last + 1) / BLOCK);
        if whole_from >= whole_to {
            found.scan(values, first, last + 1, log_y);
        } else {
            found.scan(values, first, whole_from * BLOCK, log_y);
            for b in whole_from..whole_to {
                found.gaps |= self.gap[b];
                for j in [self.min[b], self.max[b]] {
                    if j != NONE {
                        found.take(values[j as usize], j as usize);
                    }
                }
            }
            found.scan(values, whole_to * BLOCK, last + 1, log_y);
        }
        let (min, max) = (
            found.min.map_or(first, |m| m.1),
            found.max.map_or(first, |m| m.1),
        );
        out.extend([first, last, min, max]);
        found.gaps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_find_what_a_plain_scan_finds() {
        let values: Vec<f64> = (0..5000)
            .map(|i| match i % 97 {
                3 => f64::NAN,
                5 => -1.0,
                _ => ((i * 7919) % 1013) as f64,
            })
            .collect();
        for log_y in [false, true] {
            let blocks = Blocks::new(&values, log_y);
            for (a, e) in [
                (0, 5000),
                (1, 2),
                (63, 65),
                (10, 700),
                (130, 4999),
                (64, 128),
            ] {
                let mut got = Vec::new();
                let gaps = blocks.m4(&values, a, e, &mut got);
                let mut plain = Extremes::default();
                plain.scan(&values, a, e, log_y);
                let first = (a..e).find(|&j| drawable(values[j], log_y)).unwrap();
                let last = (a..e).rev().find(|&j| drawable(values[j], log_y)).unwrap();
                let want = vec![first, last, plain.min.unwrap().1, plain.max.unwrap().1];
                assert_eq!(got, want, "{a}..{e} log_y={log_y}");
                assert_eq!(gaps, plain.gaps, "{a}..{e} log_y={log_y}");
            }
        }
    }
}

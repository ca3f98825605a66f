//! Smoothing over the full-resolution values, before any bucketing: TensorBoard's debiased
//! exponential moving average and a centred running median. Non-finite values (NaN, ±inf, the
//! empty cell, and with a log y axis the values ≤ 0, which the caller turns into NaN first) are
//! gaps: they are skipped by the smoother and stay gaps (NaN) in its output.

use std::collections::BTreeSet;

/// How to smooth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Smooth {
    /// Debiased exponential moving average with this weight, `0 <= w < 1`.
    Ema(f64),
    /// Centred running median over a window of this many values (odd).
    Median(usize),
}

/// The largest median window accepted (bounded work per request: O(n log k)).
pub(crate) const MEDIAN_MAX: usize = 100_001;

impl Smooth {
    /// Parses `ema:<w>` or `median:<k>`; the error says what is accepted.
    pub(crate) fn parse(text: &str) -> Result<Smooth, String> {
        let bad = |why: &str| format!("smooth={text:?} is not accepted: {why}");
        let (kind, arg) = text
            .split_once(':')
            .ok_or_else(|| bad("write ema:<weight> or median:<window>"))?;
        match kind {
            "ema" => match arg.parse::<f64>() {
                Ok(w) if (0.0..1.0).contains(&w) => Ok(Smooth::Ema(w)),
                _ => Err(bad(
                    "the EMA weight must be a number from 0 to below 1, e.g. ema:0.9",
                )),
            },
            "median" => match arg.parse::<usize>() {
                Ok(k) if k % 2 == 1 && k <= MEDIAN_MAX => Ok(Smooth::Median(k)),
                _ => Err(bad(&format!(
                    "the median window must be an odd count from 1 to {MEDIAN_MAX}, e.g. median:11"
                ))),
            },
            _ => Err(bad("the kinds are ema and median")),
        }
    }

    /// Smooths `values` (in order along x).
    pub(crate) fn apply(self, values: &[f64]) -> Vec<f64> {
        match self {
            Smooth::Ema(w) => ema(values, w),
            Smooth::Median(k) => running_median(values, k),
        }
    }
}

/// TensorBoard's smoothing (`resmoothDataset` in its scalar chart): a running average started
/// at 0 and divided by `1 - w^n` (n = finite values so far; w < 1 here), so the first
/// points are not pulled towards 0; non-finite values are passed through without touching
/// the average; a series whose values are all equal is returned as it is.
pub(crate) fn ema(values: &[f64], w: f64) -> Vec<f64> {
    let first = values.first().copied();
    // TensorBoard compares with `==`, so a series of NaNs is not "constant" (NaN != NaN); the
    // non-finite values are passed through either way.
    let constant = values.iter().all(|&v| Some(v) == first);
    if constant {
        return values.to_vec();
    }
    let mut last = 0.0;
    // w^n for the n finite values so far, kept as a running product rather than TensorBoard's
    // `Math.pow(w, n)` per point (a `powf` per row was most of a warm request's time); the two
    // agree to a few ulps, and w^n only shrinks, so the error never grows past that.
    let mut power = 1.0;
    let mut out = Vec::with_capacity(values.len());
    for &v in values {
        if !v.is_finite() {
            out.push(v);
            continue;
        }
        last = last * w + (1.0 - w) * v;
        power *= w;
        out.push(last / (1.0 - power));
    }
    out
}

/// The total order of finite values, as a key for ordered sets (ties broken by position).
fn key(v: f64, i: usize) -> (i64, usize) {
    let bits = v.to_bits() as i64;
    // Flip the magnitude bits of negatives so the integer order is the numeric order.
    (bits ^ (((bits >> 63) as u64) >> 1) as i64, i)
}

fn value_of(key: (i64, usize)) -> f64 {
    let bits = key.0;
    f64::from_bits((bits ^ (((bits >> 63) as u64) >> 1) as i64) as u64)
}

/// The centred running median: for position `i`, the median of the finite values at positions
/// `i - k/2 ..= i + k/2` (the window shrinks at the ends; with an even number of finite values
/// in it, the mean of the two middle ones). Positions holding a non-finite value stay
/// non-finite. O(n log k): two ordered sets, the lower half and the upper half of the window.
pub(crate) fn running_median(values: &[f64], k: usize) -> Vec<f64> {
    let n = values.len();
    let half = k / 2;
    let mut low: BTreeSet<(i64, usize)> = BTreeSet::new();
    let mut high: BTreeSet<(i64, usize)> = BTreeSet::new();
    let finite = |i: usize| values[i].is_finite();
    let insert = |low: &mut BTreeSet<(i64, usize)>, high: &mut BTreeSet<(i64, usize)>, i: usize| {
        let item = key(values[i], i);
        match low.last() {
            Some(&top) if item > top => high.insert(item),
            _ => low.insert(item),
        };
    };
    let remove = |low: &mut BTreeSet<(i64, usize)>, high: &mut BTreeSet<(i64, usize)>, i: usize| {
        let item = key(values[i], i);
        if !low.remove(&item) {
            high.remove(&item);
        }
    };
    let balance = |low: &mut BTreeSet<(i64, usize)>, high: &mut BTreeSet<(i64, usize)>| {
        // low holds the lower half, one more when the count is odd.
        while low.len() > high.len() + 1 {
            let top = low.pop_last().expect("low is not empty");
            high.insert(top);
        }
        while high.len() > low.len() {
            let bottom = high.pop_first().expect("high is not empty");
            low.insert(bottom);
        }
    };
    let mut out = Vec::with_capacity(n);
    // The window [lo, hi) currently in the sets.
    let (mut lo, mut hi) = (0usize, 0usize);
    for (i, &value) in values.iter().enumerate() {
        let want_lo = i.saturating_sub(half);
        let want_hi = (i + half + 1).min(n);
        while hi < want_hi {
            if finite(hi) {
                insert(&mut low, &mut high, hi);
            }
            hi += 1;
        }
        while lo < want_lo {
            if finite(lo) {
                remove(&mut low, &mut high, lo);
            }
            lo += 1;
        }
        balance(&mut low, &mut high);
        if !value.is_finite() {
            out.push(value);
            continue;
        }
        let top = *low.last().expect("the window holds position i");
        let median = if low.len() > high.len() {
            value_of(top)
        } else {
            let bottom = *high.first().expect("balanced halves");
            (value_of(top) + value_of(bottom)) / 2.0
        };
        out.push(median);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_orders_like_the_numbers() {
        let mut values = vec![3.5, -0.0, 0.0, -7.25, 1e300, -1e-300, 2.0];
        let mut keys: Vec<_> = values.iter().enumerate().map(|(i, &v)| key(v, i)).collect();
        keys.sort();
        let sorted: Vec<f64> = keys.iter().map(|&k| value_of(k)).collect();
        values.sort_by(f64::total_cmp);
        assert_eq!(sorted, values);
    }

    #[test]
    fn median_of_a_small_window() {
        let v = [1.0, 9.0, 2.0, f64::NAN, 3.0, 100.0, 4.0];
        let m = running_median(&v, 3);
        assert_eq!(m[0], 5.0); // {1, 9}
        assert_eq!(m[1], 2.0); // {1, 9, 2}
        assert_eq!(m[2], 5.5); // {9, 2}: the NaN is skipped
        assert!(m[3].is_nan());
        assert_eq!(m[5], 4.0); // {3, 100, 4}
    }

    #[test]
    fn ema_is_debiased() {
        let s = ema(&[10.0, 20.0], 0.5);
        assert_eq!(s[0], 10.0);
        assert!((s[1] - (0.5 * 5.0 + 10.0) / 0.75).abs() < 1e-12);
        assert_eq!(ema(&[4.0, 4.0, 4.0], 0.9), vec![4.0, 4.0, 4.0]);
    }
}

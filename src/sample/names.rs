//! Keys of the document's named families (interfaces, sensors) and the order of
//! every listed family (mounts too): one rule that makes a list of names unique,
//! and one sort, both O(n log n) whatever the machine has.
//!
//! Uniqueness (README, "Names"): a name that occurs once is kept as it is. The
//! entries of a name that occurs several times are named `<name>_0`, `<name>_1`, …
//! in the order they were read, skipping any number whose result is a name the list
//! already holds (`soc`, `soc`, `soc_0` → `soc_1`, `soc_2`, `soc_0`). No two results
//! can meet: a suffix is digits only, so `<a>_<k>` = `<b>_<j>` means `a` = `b`.
//!
//! The sort is a heapsort over indices behind one non-generic comparator, a few
//! hundred bytes of code in all, where the standard library's sorts cost kilobytes
//! for every type they are used with; ties are broken by position, so it is stable.

use std::cmp::Ordering;

/// `0..n` ordered by `cmp`; equal elements keep their order.
pub fn sorted_indices(n: usize, cmp: &dyn Fn(usize, usize) -> Ordering) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    let less = |a: usize, b: usize| cmp(a, b).then(a.cmp(&b)) == Ordering::Less;
    let sift = |v: &mut [usize], mut root: usize, end: usize| loop {
        let mut child = 2 * root + 1;
        if child >= end {
            break;
        }
        if child + 1 < end && less(v[child], v[child + 1]) {
            child += 1;
        }
        if !less(v[root], v[child]) {
            break;
        }
        v.swap(root, child);
        root = child;
    };
    let len = v.len();
    for i in (0..len / 2).rev() {
        sift(&mut v, i, len);
    }
    for end in (1..len).rev() {
        v.swap(0, end);
        sift(&mut v, 0, end);
    }
    v
}

/// Sorts `items` by `key`, stable.
pub fn sort_by_key<T, K: Ord + ?Sized>(items: &mut [T], key: impl Fn(&T) -> &K) {
    let order = sorted_indices(items.len(), &|a, b| key(&items[a]).cmp(key(&items[b])));
    permute(order, &mut |a, b| items.swap(a, b));
}

/// Moves the element at `order[k]` to position `k`, for every `k`, by following
/// the permutation's cycles with swaps: O(n), and only `swap` is per type.
fn permute(mut order: Vec<usize>, swap: &mut dyn FnMut(usize, usize)) {
    for start in 0..order.len() {
        let mut at = start;
        while order[at] != usize::MAX {
            let from = order[at];
            order[at] = usize::MAX;
            if from == start {
                break;
            }
            swap(at, from);
            at = from;
        }
    }
}

/// Renames entries so that no two names are equal (the rule in the module doc).
pub fn make_unique(names: &mut [String]) {
    let order = sorted_indices(names.len(), &|a, b| names[a].cmp(&names[b]));
    let taken = |candidate: &str| order.binary_search_by(|&i| names[i].as_str().cmp(candidate)).is_ok();
    let mut renames: Vec<(usize, String)> = Vec::new();
    let mut k = 0;
    while k < order.len() {
        let base = &names[order[k]];
        let run = order[k..].iter().take_while(|&&i| names[i] == *base).count();
        if run > 1 {
            // `order` keeps equal names in their original order.
            let mut suffix: u64 = 0;
            for &i in &order[k..k + run] {
                let name = loop {
                    let candidate = format!("{base}_{suffix}");
                    suffix += 1;
                    if !taken(&candidate) {
                        break candidate;
                    }
                };
                renames.push((i, name));
            }
        }
        k += run;
    }
    for (i, name) in renames {
        names[i] = name;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unique(input: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = input.iter().map(|s| (*s).to_owned()).collect();
        make_unique(&mut v);
        v
    }

    #[test]
    fn make_unique_table() {
        let table: &[(&[&str], &[&str])] = &[
            (&[], &[]),
            (&["eth0"], &["eth0"]),
            (&["acpitz", "cpu", "acpitz"], &["acpitz_0", "cpu", "acpitz_1"]),
            // Issue 10: soc, soc, soc 0 once gave soc_0 twice.
            (&["soc", "soc", "soc_0"], &["soc_1", "soc_2", "soc_0"]),
            (&["eth0", "eth0"], &["eth0_0", "eth0_1"]),
            (&["a", "a", "a_0", "a_0"], &["a_1", "a_2", "a_0_0", "a_0_1"]),
            (&["", ""], &["_0", "_1"]),
        ];
        for &(input, want) in table {
            assert_eq!(unique(input), want, "{input:?}");
        }
    }

    /// xorshift64*: a fixed-seed generator, so a failure names its case.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) % n
        }
    }

    /// Name sets drawn from a tiny alphabet with `_` and digits, so that
    /// duplicates and names that look like generated ones are frequent.
    fn name_sets(cases: usize) -> Vec<Vec<String>> {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let alphabet = ['a', 'b', '_', '0', '1'];
        (0..cases)
            .map(|_| {
                let len = rng.below(16) as usize;
                (0..len)
                    .map(|_| {
                        let chars = rng.below(5) as usize;
                        (0..chars).map(|_| alphabet[rng.below(5) as usize]).collect()
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn make_unique_property_over_generated_name_sets() {
        for input in name_sets(5_000) {
            let mut got = input.clone();
            make_unique(&mut got);
            assert_eq!(got.len(), input.len());
            let mut sorted = got.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), got.len(), "duplicates in {got:?} from {input:?}");
            for (i, (before, after)) in input.iter().zip(&got).enumerate() {
                let count = input.iter().filter(|n| *n == before).count();
                if count == 1 {
                    assert_eq!(after, before, "a unique name is kept: {input:?}");
                } else {
                    let suffix = after.strip_prefix(before.as_str()).and_then(|s| s.strip_prefix('_'));
                    assert!(
                        suffix.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())),
                        "{after} is not {before}_N ({input:?})"
                    );
                    // Entries of one name are numbered in their order.
                    let earlier = input[..i].iter().zip(&got).filter(|(b, _)| *b == before);
                    let n = |s: &str| s[before.len() + 1..].parse::<u64>().unwrap_or(u64::MAX);
                    assert!(earlier.into_iter().all(|(_, a)| n(a) < n(after)), "{input:?} → {got:?}");
                }
            }
            let mut again = input.clone();
            make_unique(&mut again);
            assert_eq!(again, got, "deterministic");
        }
    }

    #[test]
    fn sort_is_stable_and_agrees_with_the_standard_sort() {
        let mut rng = Rng(42);
        for len in [0usize, 1, 2, 3, 10, 100, 1000] {
            let v: Vec<(u64, usize)> = (0..len).map(|i| (rng.below(8), i)).collect();
            let mut got = v.clone();
            sort_by_key(&mut got, |e| &e.0);
            let mut want = v;
            want.sort_by_key(|e| e.0);
            assert_eq!(got, want, "len {len}");
        }
    }
}

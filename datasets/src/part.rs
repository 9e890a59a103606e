//! A share of a job for one task of an array job (`--part i/n`): the items at positions `i`,
//! `i + n`, `i + 2n`, ... of a fixed order. Preprocessing shares out shards, `trainer compare`
//! shares out runs; merging the shares gives exactly the whole.

/// Part `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub index: usize,
    pub count: usize,
}

impl Part {
    /// Whether the item at `position` of the fixed order is this part's.
    pub fn keeps(&self, position: usize) -> bool {
        position % self.count == self.index
    }
}

impl std::str::FromStr for Part {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (i, n) = s.split_once('/').ok_or_else(|| format!("--part {s:?}: expected i/n, e.g. 0/4"))?;
        let index = i.trim().parse::<usize>().map_err(|e| format!("--part {s:?}: {e}"))?;
        let count = n.trim().parse::<usize>().map_err(|e| format!("--part {s:?}: {e}"))?;
        if count == 0 || index >= count {
            return Err(format!("--part {s:?}: needs 0 <= i < n"));
        }
        Ok(Part { index, count })
    }
}

/// The unfinished items of a merge (position in the fixed order, name), said for its error: by
/// part when the array's part count is known (`part 1/4 (a, b); part 3/4 (c)`: what to re-run),
/// else by name. At most 8 names per part are listed.
pub fn describe_unfinished(count: Option<usize>, unfinished: &[(usize, String)]) -> String {
    let names = |items: &[&(usize, String)]| {
        let mut s = items.iter().take(8).map(|(_, n)| n.as_str()).collect::<Vec<_>>().join(", ");
        if items.len() > 8 {
            s += &format!(" and {} more", items.len() - 8);
        }
        s
    };
    match count {
        Some(n) if n > 0 => (0..n)
            .filter_map(|i| {
                let mine: Vec<&(usize, String)> = unfinished.iter().filter(|(p, _)| p % n == i).collect();
                (!mine.is_empty()).then(|| format!("part {i}/{n} ({})", names(&mine)))
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => names(&unfinished.iter().collect::<Vec<_>>()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfinished_items_are_named_by_part_when_the_count_is_known() {
        let items: Vec<(usize, String)> = [1, 5, 3].iter().map(|&p| (p, format!("s{p}"))).collect();
        assert_eq!(describe_unfinished(Some(4), &items), "part 1/4 (s1, s5); part 3/4 (s3)");
        assert_eq!(describe_unfinished(None, &items), "s1, s5, s3");
        let many: Vec<(usize, String)> = (0..10).map(|p| (p * 2, format!("s{p}"))).collect();
        assert!(describe_unfinished(Some(2), &many).ends_with("s7 and 2 more)"), "{}", describe_unfinished(Some(2), &many));
    }

    #[test]
    fn parts_parse_and_cover_every_position_once() {
        let parts: Vec<Part> = ["0/3", "1/3", " 2 / 3 "].iter().map(|s| s.parse().unwrap()).collect();
        for position in 0..10 {
            assert_eq!(parts.iter().filter(|p| p.keeps(position)).count(), 1);
        }
        for bad in ["3/3", "1/0", "x/2", "12"] {
            assert!(bad.parse::<Part>().is_err(), "{bad}");
        }
    }
}

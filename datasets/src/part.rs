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

#[cfg(test)]
mod tests {
    use super::*;

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

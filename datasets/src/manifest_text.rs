//! Robust reading of the manifests datasets ship: UTF-8 BOM, CRLF or LF, blank lines, and
//! RFC 4180 CSV quoting (`"bird chirping, tweeting"`).

/// One non-blank line of a manifest, with its 1-based line number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    pub number: usize,
    pub text: &'a str,
}

/// The non-blank lines of `text`, with a leading BOM and trailing `\r`/whitespace removed.
pub fn lines(text: &str) -> impl Iterator<Item = Line<'_>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.split('\n').enumerate().filter_map(|(i, raw)| {
        let t = raw.trim_end_matches(['\r', ' ', '\t']);
        (!t.trim().is_empty()).then_some(Line { number: i + 1, text: t })
    })
}

/// Splits one CSV line into fields, honouring double quotes and `""` escapes.
pub fn split_csv(line: &str) -> Result<Vec<String>, &'static str> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut in_quotes = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (c, in_quotes) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => in_quotes = false,
            ('"', false) if field.is_empty() && !was_quoted => {
                in_quotes = true;
                was_quoted = true;
            }
            ('"', false) => return Err("stray quote inside an unquoted field"),
            (',', false) => {
                fields.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            (c, _) => {
                if was_quoted && !in_quotes {
                    return Err("text after a closing quote");
                }
                field.push(c);
            }
        }
    }
    if in_quotes {
        return Err("unterminated quoted field");
    }
    fields.push(field);
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_strip_bom_crlf_and_blank_lines() {
        let got: Vec<_> = lines("\u{feff}NEU\r\nHAP\r\n\r\n  \nSAD").collect();
        let texts: Vec<_> = got.iter().map(|l| (l.number, l.text)).collect();
        assert_eq!(texts, vec![(1, "NEU"), (2, "HAP"), (5, "SAD")]);
    }

    #[test]
    fn csv_cases() {
        let cases: &[(&str, Result<Vec<&str>, ()>)] = &[
            ("a,b,c", Ok(vec!["a", "b", "c"])),
            (r#"x.mp4,"bird chirping, tweeting""#, Ok(vec!["x.mp4", "bird chirping, tweeting"])),
            (r#""say ""hi""",2"#, Ok(vec![r#"say "hi""#, "2"])),
            ("a,,", Ok(vec!["a", "", ""])),
            (r#""open"#, Err(())),
            (r#"ab"c"#, Err(())),
            (r#""a"b"#, Err(())),
        ];
        for (input, want) in cases {
            let got = split_csv(input).map_err(|_| ());
            let want = want.clone().map(|v| v.into_iter().map(String::from).collect::<Vec<_>>());
            assert_eq!(got, want, "input {input:?}");
        }
    }
}

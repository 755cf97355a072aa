//! Text helpers shared by the markup renderers (HTML, SVG, JUnit XML, Markdown): escaping,
//! slugs, seed sets and number formatting. Pure functions; nothing here allocates more than
//! its output.

use std::fmt::Write as _;

/// Escapes `text` for XML and HTML, in element content and in quoted attributes alike.
/// Characters XML 1.0 forbids (control characters other than tab, newline and carriage
/// return) become U+FFFD, so that strict XML readers (CI test reporters) accept the file.
#[must_use]
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if u32::from(c) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Escapes `text` for a Markdown table cell: pipes and backslashes are escaped, newlines
/// become spaces, and HTML-significant characters are escaped so that a PR comment shows
/// the text rather than interpreting it.
#[must_use]
pub fn escape_markdown_cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '\\' => out.push_str("\\\\"),
            '`' => out.push_str("\\`"),
            '*' => out.push_str("\\*"),
            '_' => out.push_str("\\_"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A lowercase ASCII slug of `text` for file names and element ids: runs of anything but
/// letters and digits become one `-`, with none at either end (`POST /v1/orders/{id}` ->
/// `post-v1-orders-id`). Empty text gives `x`.
#[must_use]
pub fn slug(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        out.push('x');
    }
    out
}

/// Seeds written compactly as ranges in the CLI's syntax: `[1, 2, 3, 7, 9, 10]` ->
/// `1..=3, 7, 9..=10`. At most `ranges_max` ranges are written; the rest are counted.
#[must_use]
pub fn seed_set(seeds: &[u64], ranges_max: usize) -> String {
    let mut sorted = seeds.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for seed in sorted {
        match ranges.last_mut() {
            Some(last) if last.1.checked_add(1) == Some(seed) => last.1 = seed,
            _ => ranges.push((seed, seed)),
        }
    }
    if ranges.is_empty() {
        return "none".to_string();
    }
    let mut out = String::new();
    for (index, (first, last)) in ranges.iter().take(ranges_max).enumerate() {
        if index > 0 {
            out.push_str(", ");
        }
        if first == last {
            let _ = write!(out, "{first}");
        } else {
            let _ = write!(out, "{first}..={last}");
        }
    }
    if ranges.len() > ranges_max {
        let _ = write!(out, " and {} more range(s)", ranges.len() - ranges_max);
    }
    out
}

/// `part` as a percentage of `whole` with one decimal (`0.0` when `whole` is 0).
#[must_use]
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    (part as f64 * 1_000.0 / whole as f64).round() / 10.0
}

/// Simulated µs as a short human duration: `850 µs`, `12.5 ms`, `3.20 s`.
#[must_use]
pub fn duration_us(value_us: u64) -> String {
    if value_us < 1_000 {
        format!("{value_us} µs")
    } else if value_us < 1_000_000 {
        format!("{:.1} ms", value_us as f64 / 1_000.0)
    } else {
        format!("{:.2} s", value_us as f64 / 1_000_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_quotes_and_control_characters() {
        // Proves every character with a meaning in XML or HTML is escaped, in text and in
        // attributes, and that characters XML forbids are replaced rather than passed on.
        assert_eq!(
            escape(r#"<a href="x">&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("tab\tline\nbell\u{7}"), "tab\tline\nbell\u{fffd}");
        assert_eq!(escape("plain µs"), "plain µs");
    }

    #[test]
    fn markdown_cells_cannot_break_the_table() {
        // Proves a cell with pipes, newlines, emphasis and HTML stays one literal cell.
        assert_eq!(
            escape_markdown_cell("a|b\n*c* <d> `e`"),
            "a\\|b \\*c\\* &lt;d&gt; \\`e\\`"
        );
    }

    #[test]
    fn slugs_are_lowercase_dashed_and_never_empty() {
        // Proves slugs keep letters and digits, collapse the rest into single dashes, and
        // that text with no letter or digit still gives a usable name.
        assert_eq!(
            slug("POST /v1/orders/{id}/shipments"),
            "post-v1-orders-id-shipments"
        );
        assert_eq!(slug("--Walking Skeleton--"), "walking-skeleton");
        assert_eq!(slug("///"), "x");
    }

    #[test]
    fn seed_sets_are_written_as_ranges() {
        // Proves consecutive seeds fold into inclusive ranges in sorted order, duplicates
        // vanish, and long lists are cut with a count of what was left out.
        assert_eq!(seed_set(&[9, 1, 2, 3, 7, 10, 3], 10), "1..=3, 7, 9..=10");
        assert_eq!(seed_set(&[], 10), "none");
        assert_eq!(seed_set(&[1, 3, 5], 2), "1, 3 and 1 more range(s)");
        assert_eq!(
            seed_set(&[u64::MAX - 1, u64::MAX], 2),
            format!("{}..={}", u64::MAX - 1, u64::MAX)
        );
    }

    #[test]
    fn numbers_format_for_people() {
        // Proves percentages round to one decimal (and survive a zero whole) and durations
        // pick a readable unit.
        assert_eq!(percent(1, 3), 33.3);
        assert_eq!(percent(5, 0), 0.0);
        assert_eq!(duration_us(850), "850 µs");
        assert_eq!(duration_us(12_500), "12.5 ms");
        assert_eq!(duration_us(3_200_000), "3.20 s");
    }
}

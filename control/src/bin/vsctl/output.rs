//! How results are printed: aligned tables, `key: value` lines, or one JSON document.
//!
//! Every renderer returns the whole text (ending in a newline, or empty); `main` writes it.

use serde::Serialize;

/// How a table column lines up its cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    /// For numbers, so that digits line up.
    Right,
}

/// A table with a header line and one line per object; columns are separated by two spaces
/// and no line ends in whitespace.
pub struct Table {
    headers: Vec<&'static str>,
    aligns: Vec<Align>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(columns: &[(&'static str, Align)]) -> Self {
        Table {
            headers: columns.iter().map(|(h, _)| *h).collect(),
            aligns: columns.iter().map(|(_, a)| *a).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row: one cell per column (missing cells print empty, extra ones are ignored).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let cell =
            |row: &[String], col: usize| -> String { row.get(col).cloned().unwrap_or_default() };
        let header: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        let lines: Vec<&[String]> = std::iter::once(header.as_slice())
            .chain(self.rows.iter().map(Vec::as_slice))
            .collect();
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|col| {
                lines
                    .iter()
                    .map(|row| cell(row, col).chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in lines {
            let mut line = String::new();
            for (col, (&width, &align)) in widths.iter().zip(&self.aligns).enumerate() {
                if col > 0 {
                    line.push_str("  ");
                }
                let text = cell(row, col);
                let pad = " ".repeat(width.saturating_sub(text.chars().count()));
                match align {
                    Align::Left => {
                        line.push_str(&text);
                        line.push_str(&pad);
                    }
                    Align::Right => {
                        line.push_str(&pad);
                        line.push_str(&text);
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `key: value` lines, values lined up after the longest key.
pub fn key_values(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len() + 1).max().unwrap_or(0);
    let mut out = String::new();
    for (key, value) in pairs {
        let line = format!("{:<width$} {value}", format!("{key}:"));
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// One pretty-printed JSON document and a newline.
pub fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<String> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    Ok(text)
}

/// `up` or `down`.
pub fn up_down(up: bool) -> String {
    if up { "up" } else { "down" }.to_owned()
}

/// The text, or `-` when it is empty, so that table columns never collapse.
pub fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let mut table = Table::new(&[
            ("NAME", Align::Left),
            ("PACKETS", Align::Right),
            ("MAC", Align::Left),
        ]);
        table.row(vec!["eth0".into(), "5".into(), "02:00:00:00:00:01".into()]);
        table.row(vec!["vhost-user-1".into(), "123456789".into(), "-".into()]);
        assert_eq!(
            table.render(),
            "NAME            PACKETS  MAC\n\
             eth0                  5  02:00:00:00:00:01\n\
             vhost-user-1  123456789  -\n"
        );
    }

    #[test]
    fn empty_table_prints_its_header() {
        let table = Table::new(&[("IFACE_A", Align::Left), ("IFACE_B", Align::Left)]);
        assert_eq!(table.render(), "IFACE_A  IFACE_B\n");
    }

    #[test]
    fn short_rows_do_not_panic() {
        let mut table = Table::new(&[("A", Align::Left), ("B", Align::Right)]);
        table.row(vec!["x".into()]);
        assert_eq!(table.render(), "A  B\nx\n");
    }

    #[test]
    fn key_values_line_up() {
        let text = key_values(&[
            ("name", "p0".into()),
            ("admin", "up".into()),
            ("xconnect", "-".into()),
        ]);
        assert_eq!(text, "name:     p0\nadmin:    up\nxconnect: -\n");
    }

    #[test]
    fn json_ends_in_newline() {
        assert_eq!(json(&serde_json::json!({})).expect("serializes"), "{}\n");
    }
}

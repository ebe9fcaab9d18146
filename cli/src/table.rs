//! Tables for the terminal: each column as wide as its widest cell (header
//! included), so the columns line up whatever the content: NodeIds, long
//! publication ids and city names alike.
//!
//! Columns are separated by two spaces; the last column is not padded, so no
//! line ends in blanks.
//!
//! Every cell is cleaned for the terminal as it is added ([`crate::terminal::line`]):
//! cells hold peers' names and titles, and a table is where most of them are seen.

/// How a column's cells sit in its width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    /// Text: flush left.
    Left,
    /// Figures: flush right, so digits line up.
    Right,
}

/// A column: its header and alignment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Column {
    header: &'static str,
    align: Align,
}

/// A left-aligned column (text).
pub(crate) const fn left(header: &'static str) -> Column {
    Column {
        header,
        align: Align::Left,
    }
}

/// A right-aligned column (figures).
pub(crate) const fn right(header: &'static str) -> Column {
    Column {
        header,
        align: Align::Right,
    }
}

/// A table being filled, row by row.
#[derive(Debug)]
pub(crate) struct Table<'a> {
    columns: &'a [Column],
    rows: Vec<Vec<String>>,
    indent: &'static str,
}

impl<'a> Table<'a> {
    /// An empty table with these columns.
    pub(crate) fn new(columns: &'a [Column]) -> Table<'a> {
        Table {
            columns,
            rows: Vec::new(),
            indent: "",
        }
    }

    /// Starts every line with `indent` (for a table inside an indented block).
    pub(crate) fn indented(mut self, indent: &'static str) -> Table<'a> {
        self.indent = indent;
        self
    }

    /// Adds a row: one cell per column (missing cells are blank, extra ones
    /// dropped), each shown as [`crate::terminal::line`] makes it.
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows
            .push(cells.iter().map(|c| crate::terminal::line(c)).collect());
    }

    /// The table as lines of text, header first.
    pub(crate) fn render(&self) -> String {
        let header: Vec<String> = self.columns.iter().map(|c| c.header.to_string()).collect();
        let lines: Vec<&Vec<String>> = std::iter::once(&header).chain(&self.rows).collect();
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|i| {
                lines
                    .iter()
                    .map(|cells| cells.get(i).map_or(0, |c| width(c)))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for cells in lines {
            out.push_str(self.indent);
            let mut line = String::new();
            for (i, column) in self.columns.iter().enumerate() {
                let cell = cells.get(i).map_or("", String::as_str);
                let pad = " ".repeat(widths[i].saturating_sub(width(cell)));
                if i > 0 {
                    line.push_str("  ");
                }
                match column.align {
                    Align::Left => {
                        line.push_str(cell);
                        line.push_str(&pad);
                    }
                    Align::Right => {
                        line.push_str(&pad);
                        line.push_str(cell);
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// Prints the table on stdout.
    pub(crate) fn print(&self) {
        print!("{}", self.render());
    }
}

/// How many columns a cell takes on a terminal: one per character, which holds
/// for the Latin, Greek and Cyrillic names the partner cities write.
fn width(cell: &str) -> usize {
    cell.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fit_their_widest_cell_and_line_up() {
        const COLUMNS: [Column; 3] = [left("WHEN"), left("PUBLICATION"), right("N")];
        let mut table = Table::new(&COLUMNS);
        table.row(vec![
            "2026-01-01".into(),
            "a-very-long-publication-id".into(),
            "7".into(),
        ]);
        table.row(vec!["-".into(), "short".into(), "1234".into()]);
        let text = table.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "WHEN        PUBLICATION                    N");
        assert_eq!(lines[1], "2026-01-01  a-very-long-publication-id     7");
        assert_eq!(lines[2], "-           short                       1234");
    }

    /// A cell cannot carry an escape sequence to the terminal, and the
    /// columns still line up around its visible escape.
    #[test]
    fn cells_are_cleaned_and_aligned_by_what_is_shown() {
        const COLUMNS: [Column; 2] = [left("NAME"), left("ROLE")];
        let mut table = Table::new(&COLUMNS);
        table.row(vec!["\u{1b}[2J\u{202E}x".into(), "partner".into()]);
        table.row(vec!["Modena".into(), "partner".into()]);
        let text = table.render();
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{202E}'),
            "{text:?}"
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "\\u{1b}[2J\\u{202e}x  partner");
        // The escaped cell is 18 characters wide as shown, and the column with it.
        assert_eq!(lines[2], format!("{:<18}  partner", "Modena"));
    }

    #[test]
    fn the_last_column_is_not_padded_and_accents_count_once() {
        const COLUMNS: [Column; 2] = [left("CITY"), left("TITLE")];
        let mut table = Table::new(&COLUMNS).indented("  ");
        table.row(vec!["Thessaloníki".into(), "x".into()]);
        table.row(vec!["Ö".into(), String::new()]);
        let text = table.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "  CITY          TITLE");
        assert_eq!(lines[1], "  Thessaloníki  x");
        assert_eq!(lines[2], "  Ö");
    }
}

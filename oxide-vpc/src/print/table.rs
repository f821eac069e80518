//! Column alignment for the printers: rows of cells written with elastic tabstops, the
//! layout the reference got from the `tabwriter` crate (minimum padding two spaces, left
//! aligned). Written here rather than taken as a dependency because the printers need a
//! few dozen lines of it, and owning it lets a table hold an unaligned line (a rule under
//! its header) without splitting the header's alignment from its rows'.

use std::fmt::{Display, Write as _};
use std::io::{self, Write};
use std::string::{String, ToString};
use std::vec::Vec;

/// Spaces between a cell and the next column.
const PADDING: usize = 2;

enum Row {
    /// Cells; the last is written as is and sets no column's width.
    Cells(Vec<String>),
    /// A line written as is, between aligned rows.
    Line(String),
}

/// A table whose columns are as wide as their widest cell plus [`PADDING`].
#[derive(Default)]
pub(crate) struct Table {
    rows: Vec<Row>,
}

impl Table {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A header row, its column names separated by tabs.
    pub(crate) fn header(&mut self, tabbed: &str) {
        self.rows
            .push(Row::Cells(tabbed.split('\t').map(String::from).collect()));
    }

    /// A row of cells.
    pub(crate) fn row(&mut self, cells: &[&dyn Display]) {
        let cells = cells.iter().map(|c| c.to_string()).collect();
        self.rows.push(Row::Cells(cells));
    }

    /// A row whose cells are all empty: a blank line that keeps the table's shape.
    pub(crate) fn blank(&mut self) {
        self.rows.push(Row::Cells(Vec::new()));
    }

    /// A line that is not part of the columns (a horizontal rule).
    pub(crate) fn line(&mut self, text: impl Into<String>) {
        self.rows.push(Row::Line(text.into()));
    }

    fn widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = Vec::new();
        for row in &self.rows {
            let Row::Cells(cells) = row else { continue };
            let aligned = cells.len().saturating_sub(1);
            for (i, cell) in cells.iter().take(aligned).enumerate() {
                let w = cell.chars().count();
                match widths.get_mut(i) {
                    Some(max) => *max = (*max).max(w),
                    // Columns are visited in order, so a missing one is the next one.
                    None => widths.push(w),
                }
            }
        }
        widths
    }

    /// Write every row, one line each.
    pub(crate) fn write<W: Write + ?Sized>(&self, w: &mut W) -> io::Result<()> {
        let widths = self.widths();
        let mut line = String::new();
        for row in &self.rows {
            line.clear();
            match row {
                Row::Line(text) => line.push_str(text),
                Row::Cells(cells) => {
                    let last = cells.len().saturating_sub(1);
                    for (i, cell) in cells.iter().enumerate() {
                        if i == last {
                            line.push_str(cell);
                        } else {
                            let width = widths.get(i).copied().unwrap_or(0) + PADDING;
                            // Writing to a String cannot fail.
                            let _ = write!(line, "{cell:<width$}");
                        }
                    }
                }
            }
            writeln!(w, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::render;
    use super::*;

    #[test]
    fn columns_fit_their_widest_cell_and_the_last_cell_is_free() {
        let mut t = Table::new();
        t.header("A\tLONG HEADER\tZ");
        t.line("--");
        t.row(&[&"wide cell", &1, &"a last cell wider than its header"]);
        t.blank();
        t.row(&[&"", &"", &"x"]);
        assert_eq!(
            render(|w| t.write(w)),
            "A          LONG HEADER  Z\n\
             --\n\
             wide cell  1            a last cell wider than its header\n\
             \n                        x\n"
        );
    }

    #[test]
    fn widths_count_characters_not_bytes() {
        let mut t = Table::new();
        t.row(&[&"é", &"x"]);
        t.row(&[&"ab", &"y"]);
        assert_eq!(render(|w| t.write(w)), "é   x\nab  y\n");
    }
}

//! Tables: left-aligned columns two spaces apart, the last one unpadded,
//! trailing blanks trimmed.

/// The rows (the header first) as a table.
pub fn columns<R: AsRef<[String]>>(rows: &[R]) -> String {
    painted_columns(rows, |_, _, cell| cell.to_string())
}

/// [`columns`], with `paint(row, column, cell)` giving the text to print
/// for each cell below the header (e.g. wrapped in colour codes); widths
/// are those of the cells themselves.
pub fn painted_columns<R: AsRef<[String]>>(
    rows: &[R],
    paint: impl Fn(usize, usize, &str) -> String,
) -> String {
    let count = rows.first().map_or(0, |r| r.as_ref().len());
    let mut widths = vec![0usize; count];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row.as_ref()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let row = row.as_ref();
        let mut line = String::new();
        for (col, cell) in row.iter().enumerate() {
            if i == 0 {
                line.push_str(cell);
            } else {
                line.push_str(&paint(i, col, cell));
            }
            if col + 1 < row.len() {
                line.push_str(&" ".repeat(widths[col] - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

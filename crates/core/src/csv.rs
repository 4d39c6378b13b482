//! CSV text (RFC 4180) for the auditors' exports.
//!
//! A row's cells are taken from the JSON form of an item, by the API's own field names, so a
//! column means exactly what the same field means in the JSON API: strings as they are, numbers
//! and booleans as JSON writes them, null or absent as an empty cell, and nested values (a
//! claim's rewards, an audit entry's `before` and `after`) as compact JSON text in one cell.
//!
//! Fields containing a comma, a double quote, CR or LF are quoted, with inner quotes doubled;
//! every line ends in CRLF.
//!
//! **Formula injection.** Much of what is exported was typed by someone else: usernames, event
//! names, notes. A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` as a formula
//! (and a leading tab or CR can hide such a start), so an auditor opening the file would run
//! text a player or an operator chose. Such a cell gets a leading `'`, which spreadsheets read
//! as "this is text" (OWASP's CSV-injection advice). The price: a plain-text reader sees the
//! `'`, e.g. `'-op` for a user named `-op`.

use serde::Serialize;
use serde_json::Value;

/// First characters that make a spreadsheet read a cell as a formula.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// One CSV line: `fields` escaped, joined by commas, ending in CRLF.
pub fn line<'a>(fields: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for (index, field) in fields.into_iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        push_field(&mut out, field);
    }
    out.push_str("\r\n");
    out
}

/// The line of `item`: for each of `columns`, the member of that name of the item's JSON form.
pub fn record(columns: &[&str], item: &impl Serialize) -> Result<String, serde_json::Error> {
    let json = serde_json::to_value(item)?;
    let cells: Vec<String> = columns.iter().map(|column| cell(json.get(column))).collect();
    Ok(line(cells.iter().map(String::as_str)))
}

/// The text of one JSON value in a cell.
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        // Numbers and booleans as JSON writes them; arrays and objects as compact JSON.
        Some(other) => other.to_string(),
    }
}

/// Appends `text` as one field: defused when it could start a formula, quoted when needed.
fn push_field(out: &mut String, text: &str) {
    let defuse = text.starts_with(FORMULA_STARTS);
    let quote = text.contains([',', '"', '\r', '\n']);
    if quote {
        out.push('"');
    }
    if defuse {
        out.push('\'');
    }
    if quote {
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn field(text: &str) -> String {
        let mut out = String::new();
        push_field(&mut out, text);
        out
    }

    /// Each `(text, written)`: `text` is written as the field `written`.
    fn assert_written(cases: &[(&str, &str)]) {
        for (text, written) in cases {
            assert_eq!(field(text), *written, "{text:?}");
        }
    }

    #[test]
    fn plain_fields_are_written_as_they_are() {
        let plain = ["SUCCESS_ALL_GRANTED", "2025-01-02T03:04:05.678Z", "", "héllo wörld", "a=b", "1-2"];
        assert_written(&plain.map(|text| (text, text)));
    }

    #[test]
    fn commas_quotes_and_line_breaks_are_quoted() {
        assert_written(&[
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("two\nlines", "\"two\nlines\""),
            ("two\r\nlines", "\"two\r\nlines\""),
            ("\"", "\"\"\"\""),
        ]);
    }

    #[test]
    fn formula_starts_are_defused() {
        assert_written(&[
            ("=1+2", "'=1+2"),
            ("+1", "'+1"),
            ("-op", "'-op"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            // Defused and quoted (a CR, a quote): the `'` goes inside the quotes.
            ("\rx", "\"'\rx\""),
            ("=HYPERLINK(\"http://x\",\"y\")", "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""),
        ]);
        // Only the first character counts: "a=b" and "1-2" are plain fields.
    }

    #[test]
    fn lines_join_fields_and_end_in_crlf() {
        assert_eq!(line(["id", "userId", "createdAt"]), "id,userId,createdAt\r\n");
        assert_eq!(line(["a,b", "", "-c"]), "\"a,b\",,'-c\r\n");
        assert_eq!(line([]), "\r\n");
    }

    #[test]
    fn records_take_members_by_name_in_column_order() {
        let item = json!({
            "id": "e1", "count": 3, "ok": true, "missing": null,
            "after": { "roles": ["USER", "ADMIN"] }, "name": "=cmd",
        });
        let columns = ["name", "count", "ok", "missing", "absent", "after", "id"];
        assert_eq!(
            record(&columns, &item).unwrap(),
            "'=cmd,3,true,,,\"{\"\"roles\"\":[\"\"USER\"\",\"\"ADMIN\"\"]}\",e1\r\n"
        );
    }

    #[test]
    fn a_quoted_field_reads_back_as_its_text() {
        // A reader of RFC 4180: strip the outer quotes and undo the doubling.
        let text = "he said \"no\", twice\r\nthen left";
        let written = field(text);
        let inner = written.strip_prefix('"').and_then(|w| w.strip_suffix('"')).unwrap();
        assert_eq!(inner.replace("\"\"", "\""), text);
    }
}

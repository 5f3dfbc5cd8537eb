//! Data: reading labeled passages (JSONL, CSV, TSV) for training and
//! evaluation, and plain or JSONL passages for scoring.
//!
//! Every problem stops with an error that names the file and the line: a
//! malformed record, a missing column, an unknown label, bytes that are not
//! UTF-8. With `skip_invalid` such lines are skipped instead and counted.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// File formats, chosen by extension unless given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Jsonl,
    Csv,
    Tsv,
}

impl Format {
    pub fn from_path(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "jsonl" | "ndjson" | "json" => Some(Self::Jsonl),
            "csv" => Some(Self::Csv),
            "tsv" | "tab" => Some(Self::Tsv),
            _ => None,
        }
    }
}

/// How to read one labeled file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    pub path: PathBuf,
    #[serde(default)]
    pub format: Option<Format>,
    #[serde(default = "default_text")]
    pub text: String,
    #[serde(default = "default_label")]
    pub label: String,
    /// Renames labels as read (`{"pants-fire" = "fake"}`).
    #[serde(default)]
    pub label_map: BTreeMap<String, String>,
    /// Weight of each of this file's samples in training.
    #[serde(default = "default_weight")]
    pub weight: f32,
    /// Fields (columns) whose values are kept with each example, to report
    /// metrics by them (`source`, `outlet`); absent ones are left empty.
    #[serde(default)]
    pub slices: Vec<String>,
    /// Rows with these labels (as written in the file, before
    /// `label_map`) are left out, as if absent: one class of a file that
    /// serves another head (babe's `non_biased` sentences as ordinary
    /// news, its `biased` ones skipped).
    #[serde(default)]
    pub skip_labels: Vec<String>,
    /// In a mixture head (see `train::MixtureConfig`), the domain this
    /// file belongs to: files of one domain train one expert, and the
    /// domains are what the gate tells apart. Defaults to the file's
    /// folder name (its file stem when it has none).
    #[serde(default)]
    pub domain: Option<String>,
    /// In a mixture head, the expert this file trains, when several
    /// domains share one (movie reviews, news and headlines in one
    /// general expert, say): the gate tells experts apart, while
    /// leave-one-out still holds each domain out on its own. Defaults to
    /// the file's domain.
    #[serde(default)]
    pub expert: Option<String>,
}

fn default_text() -> String {
    "text".into()
}
fn default_label() -> String {
    "label".into()
}
/// A data entry's `weight` when it names none.
pub(crate) fn default_weight() -> f32 {
    1.0
}

impl DataSpec {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            format: None,
            text: default_text(),
            label: default_label(),
            label_map: BTreeMap::new(),
            weight: default_weight(),
            slices: Vec::new(),
            skip_labels: Vec::new(),
            domain: None,
            expert: None,
        }
    }

    /// The mixture expert a file trains (and, for a dev file, is scored
    /// with): `expert`, else its [`DataSpec::domain`].
    pub fn expert(&self) -> String {
        self.expert.clone().unwrap_or_else(|| self.domain())
    }

    /// The folder the file sits in, as written.
    pub fn folder(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new(""))
    }

    /// The domain of a file: `domain`, else the name of the folder the
    /// file is in, else its file stem. A mixture gives each domain an
    /// expert; leave-one-out holds a domain's files out together.
    pub fn domain(&self) -> String {
        if let Some(d) = &self.domain {
            return d.clone();
        }
        let folder = self
            .path
            .parent()
            .and_then(|p| p.file_name())
            .map(|f| f.to_string_lossy().into_owned());
        folder
            .filter(|f| !f.is_empty())
            .or_else(|| {
                self.path
                    .file_stem()
                    .map(|f| f.to_string_lossy().into_owned())
            })
            .unwrap_or_default()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: unknown file format (use .jsonl, .csv or .tsv, or set `format`)")]
    UnknownFormat { path: PathBuf },
    #[error("{path}:{line}: not valid UTF-8")]
    NotUtf8 { path: PathBuf, line: u64 },
    #[error("{path}:{line}: {message}")]
    Malformed {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{path}:{line}: invalid JSON at column {column} of that line: {reason}")]
    Json {
        path: PathBuf,
        line: u64,
        /// The column within the line.
        column: usize,
        /// serde_json's message, without its position (which counts
        /// lines and columns of the one line it was given).
        reason: String,
    },
    #[error("{path}:{line}: missing field {field:?} (the line has {})", list(keys))]
    MissingField {
        path: PathBuf,
        line: u64,
        field: String,
        /// The fields the line has.
        keys: Vec<String>,
    },
    #[error("{path}: no column {field:?} (the file has {})", list(columns))]
    MissingColumn {
        path: PathBuf,
        field: String,
        /// The file's columns, from its header.
        columns: Vec<String>,
    },
    #[error("{path}:{line}: {source}")]
    Csv {
        path: PathBuf,
        line: u64,
        #[source]
        source: csv::Error,
    },
    #[error("{path}:{line}: unknown label {label:?} (expected one of {expected:?})")]
    UnknownLabel {
        path: PathBuf,
        line: u64,
        label: String,
        expected: Vec<String>,
    },
    #[error("{path}: no records")]
    Empty { path: PathBuf },
}

/// `"a", "b"` for a list of names, `none` for an empty one.
fn list(names: &[String]) -> String {
    if names.is_empty() {
        return "none".into();
    }
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    quoted.join(", ")
}

/// A labeled passage: text, the index of its label, and the values of the
/// spec's `slices` fields (empty when a field is absent).
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub text: String,
    pub label: usize,
    pub tags: Vec<String>,
}

/// What reading a labeled file gave.
#[derive(Debug, Clone)]
pub struct Labeled {
    pub examples: Vec<Example>,
    /// Lines skipped under `skip_invalid`, with the first reason.
    pub skipped: u64,
    pub first_skip: Option<String>,
    /// sha256 of the file's bytes, hex.
    pub sha256: String,
}

/// One raw record before label lookup: (line, text, label, tags).
type Raw = (u64, String, String, Vec<String>);

/// Reads `spec.path` with `labels` as the allowed label set.
pub fn read_labeled(
    spec: &DataSpec,
    labels: &[String],
    skip_invalid: bool,
) -> Result<Labeled, DataError> {
    let path = spec.path.as_path();
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(io)?;
    let sha256 = hex(&Sha256::digest(&bytes));
    let format = spec
        .format
        .or_else(|| Format::from_path(path))
        .ok_or_else(|| DataError::UnknownFormat {
            path: path.to_path_buf(),
        })?;
    let mut out = Labeled {
        examples: Vec::new(),
        skipped: 0,
        first_skip: None,
        sha256,
    };
    let accept = |rec: Result<Raw, DataError>, out: &mut Labeled| -> Result<(), DataError> {
        if matches!(&rec, Ok((_, _, raw, _)) if spec.skip_labels.contains(raw)) {
            return Ok(());
        }
        let checked = rec.and_then(|(line, text, raw, tags)| {
            let label = spec.label_map.get(&raw).cloned().unwrap_or(raw);
            match labels.iter().position(|l| *l == label) {
                Some(label) => Ok(Example { text, label, tags }),
                None => Err(DataError::UnknownLabel {
                    path: path.to_path_buf(),
                    line,
                    label,
                    expected: labels.to_vec(),
                }),
            }
        });
        match checked {
            Ok(ex) => out.examples.push(ex),
            Err(e @ DataError::Io { .. }) => return Err(e),
            Err(e) if skip_invalid => {
                out.skipped += 1;
                out.first_skip.get_or_insert_with(|| e.to_string());
            }
            Err(e) => return Err(e),
        }
        Ok(())
    };
    match format {
        Format::Jsonl => {
            for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
                let n = i as u64 + 1;
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let rec = jsonl_record(path, n, line, &spec.text, Some(&spec.label), &spec.slices)
                    .map(|(text, label, tags)| (n, text, label.unwrap_or_default(), tags));
                accept(rec, &mut out)?;
            }
        }
        Format::Csv | Format::Tsv => {
            let delimiter = if format == Format::Csv { b',' } else { b'\t' };
            let mut reader = csv::ReaderBuilder::new()
                .delimiter(delimiter)
                .flexible(false)
                .from_reader(bytes.as_slice());
            let csv_error = |source: csv::Error| DataError::Csv {
                path: path.to_path_buf(),
                line: source.position().map_or(1, |p| p.line()),
                source,
            };
            let headers = reader.byte_headers().map_err(csv_error)?.clone();
            let column = |name: &str| column_of(path, &headers, name);
            let (tc, lc) = (column(&spec.text)?, column(&spec.label)?);
            // Slice columns the file does not have stay empty.
            let tag_columns: Vec<Option<usize>> = spec
                .slices
                .iter()
                .map(|name| headers.iter().position(|h| h == name.as_bytes()))
                .collect();
            for rec in reader.byte_records() {
                let rec = match rec {
                    Ok(r) => {
                        let line = r.position().map_or(0, |p| p.line());
                        let field = |c: usize| cell(path, &r, line, c);
                        let tags = tag_columns
                            .iter()
                            .map(|c| c.and_then(|c| field(c).ok()).unwrap_or_default())
                            .collect();
                        field(tc).and_then(|t| Ok((line, t, field(lc)?, tags)))
                    }
                    Err(e) => Err(csv_error(e)),
                };
                accept(rec, &mut out)?;
            }
        }
    }
    if out.examples.is_empty() {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(out)
}

/// The index of column `name` in a CSV/TSV header.
fn column_of(path: &Path, headers: &csv::ByteRecord, name: &str) -> Result<usize, DataError> {
    headers
        .iter()
        .position(|h| h == name.as_bytes())
        .ok_or_else(|| DataError::MissingColumn {
            path: path.to_path_buf(),
            field: name.to_string(),
            columns: headers
                .iter()
                .map(|h| String::from_utf8_lossy(h).into_owned())
                .collect(),
        })
}

/// Cell `c` of a CSV/TSV record (at `line`) as text. (`flexible(false)`
/// gives every record the header's width, so the cell is there.)
fn cell(path: &Path, record: &csv::ByteRecord, line: u64, c: usize) -> Result<String, DataError> {
    let raw = record.get(c).unwrap_or_default();
    String::from_utf8(raw.to_vec()).map_err(|_| DataError::NotUtf8 {
        path: path.to_path_buf(),
        line,
    })
}

/// What kind of JSON value `v` is, for messages.
fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Parses one JSONL line into its text and, if asked, its label field.
fn jsonl_record(
    path: &Path,
    line: u64,
    bytes: &[u8],
    text_field: &str,
    label_field: Option<&str>,
    tag_fields: &[String],
) -> Result<(String, Option<String>, Vec<String>), DataError> {
    let s = std::str::from_utf8(bytes).map_err(|_| DataError::NotUtf8 {
        path: path.to_path_buf(),
        line,
    })?;
    let value: serde_json::Value = serde_json::from_str(s).map_err(|e| {
        // serde_json counts lines and columns within the one line it was
        // given: keep the column, drop its "at line 1 column N".
        let message = e.to_string();
        let position = format!(" at line {} column {}", e.line(), e.column());
        DataError::Json {
            path: path.to_path_buf(),
            line,
            column: e.column(),
            reason: message
                .strip_suffix(&position)
                .unwrap_or(&message)
                .to_string(),
        }
    })?;
    let obj = value.as_object().ok_or_else(|| DataError::Malformed {
        path: path.to_path_buf(),
        line,
        message: "expected a JSON object".into(),
    })?;
    let get = |field: &str, what: &str| -> Result<String, DataError> {
        match obj.get(field) {
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            // Numeric and boolean labels are read as their JSON text.
            Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_)))
                if what == "label" =>
            {
                Ok(v.to_string())
            }
            Some(v) => Err(DataError::Malformed {
                path: path.to_path_buf(),
                line,
                message: format!(
                    "the {what} field {field:?} must be a string, not {}",
                    json_type(v)
                ),
            }),
            None => Err(DataError::MissingField {
                path: path.to_path_buf(),
                line,
                field: field.to_string(),
                keys: obj.keys().cloned().collect(),
            }),
        }
    };
    let text = get(text_field, "text")?;
    let label = label_field.map(|f| get(f, "label")).transpose()?;
    let tags = tag_fields
        .iter()
        .map(|f| match obj.get(f) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Null) | None => String::new(),
            Some(v) => v.to_string(),
        })
        .collect();
    Ok((text, label, tags))
}

/// Formats of passages to score: plain text lines, or one of the labeled
/// files' formats (whose text column is read, and nothing else).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassageFormat {
    Plain,
    Jsonl,
    Csv,
    Tsv,
}

impl PassageFormat {
    /// By extension: `.txt`/`.text` plain, else as [`Format::from_path`].
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        if ext == "txt" || ext == "text" {
            return Some(Self::Plain);
        }
        Format::from_path(path).map(|f| match f {
            Format::Jsonl => Self::Jsonl,
            Format::Csv => Self::Csv,
            Format::Tsv => Self::Tsv,
        })
    }
}

/// Reads passages to score from plain text or JSONL lines: JSONL when
/// told so, or, when not told, when the first non-blank line starts with
/// `{`. Blank lines are skipped (they carry no passage). After an error
/// the next line is read as usual, so a caller may skip bad lines.
pub struct PassageReader<R> {
    reader: R,
    name: PathBuf,
    line: u64,
    jsonl: Option<bool>,
    text_field: String,
    buf: Vec<u8>,
}

impl<R: BufRead> PassageReader<R> {
    /// A reader that tells JSONL from plain text by the first line, and
    /// reads a JSONL line's `text` field.
    pub fn new(reader: R, name: impl Into<PathBuf>) -> Self {
        Self {
            reader,
            name: name.into(),
            line: 0,
            jsonl: None,
            text_field: default_text(),
            buf: Vec::new(),
        }
    }

    /// Reads JSONL (`Some(true)`), plain text (`Some(false)`) or either
    /// (`None`, by the first line), with the text in `text_field`.
    pub fn with_format(mut self, jsonl: Option<bool>, text_field: &str) -> Self {
        self.jsonl = jsonl;
        self.text_field = text_field.to_string();
        self
    }
}

impl<R: BufRead> Iterator for PassageReader<R> {
    /// (line number, passage)
    type Item = Result<(u64, String), DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buf.clear();
            match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(source) => {
                    return Some(Err(DataError::Io {
                        path: self.name.clone(),
                        source,
                    }))
                }
            }
            self.line += 1;
            let mut line = self.buf.as_slice();
            line = line.strip_suffix(b"\n").unwrap_or(line);
            line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let jsonl = *self
                .jsonl
                .get_or_insert_with(|| line.trim_ascii_start().first() == Some(&b'{'));
            let n = self.line;
            return Some(if jsonl {
                jsonl_record(&self.name, n, line, &self.text_field, None, &[])
                    .map(|(t, _, _)| (n, t))
            } else {
                std::str::from_utf8(line)
                    .map(|s| (n, s.to_string()))
                    .map_err(|_| DataError::NotUtf8 {
                        path: self.name.clone(),
                        line: n,
                    })
            });
        }
    }
}

/// Passages to score: (line number, passage) items, from plain or JSONL
/// lines or from a CSV/TSV file's text column.
pub enum Passages {
    Lines(PassageReader<Box<dyn BufRead>>),
    Table {
        records: csv::ByteRecordsIntoIter<Box<dyn BufRead>>,
        path: PathBuf,
        column: usize,
    },
}

impl Iterator for Passages {
    type Item = Result<(u64, String), DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::Lines(lines) => lines.next(),
            Self::Table {
                records,
                path,
                column,
            } => Some(match records.next()? {
                Ok(r) => {
                    let line = r.position().map_or(0, |p| p.line());
                    cell(path, &r, line, *column).map(|t| (line, t))
                }
                Err(source) => Err(DataError::Csv {
                    path: path.clone(),
                    line: source.position().map_or(0, |p| p.line()),
                    source,
                }),
            }),
        }
    }
}

/// A file, or standard input for `-`, buffered.
fn open_input(path: &Path) -> Result<Box<dyn BufRead>, DataError> {
    if path == Path::new("-") {
        return Ok(Box::new(BufReader::new(std::io::stdin())));
    }
    let f = File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Box::new(BufReader::new(f)))
}

/// The whole of a file (or `-` for standard input) as one text: an
/// article to split and score. Invalid UTF-8 is refused with its line.
pub fn read_text(path: &Path) -> Result<String, DataError> {
    let mut bytes = Vec::new();
    open_input(path)?
        .read_to_end(&mut bytes)
        .map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        DataError::NotUtf8 {
            path: path.to_path_buf(),
            line: 1 + valid.iter().filter(|&&b| b == b'\n').count() as u64,
        }
    })
}

/// Opens a file (or `-` for standard input) of passages to score, in
/// `format` (else by extension; else, and for standard input, JSONL or
/// plain text by the first line), with the text in `text_field` (JSONL,
/// CSV, TSV).
pub fn open_passages(
    path: &Path,
    format: Option<PassageFormat>,
    text_field: &str,
) -> Result<Passages, DataError> {
    let reader = open_input(path)?;
    let lines = |reader, jsonl| {
        Ok(Passages::Lines(
            PassageReader::new(reader, path).with_format(jsonl, text_field),
        ))
    };
    let delimiter = match format.or_else(|| PassageFormat::from_path(path)) {
        None => return lines(reader, None),
        Some(PassageFormat::Plain) => return lines(reader, Some(false)),
        Some(PassageFormat::Jsonl) => return lines(reader, Some(true)),
        Some(PassageFormat::Csv) => b',',
        Some(PassageFormat::Tsv) => b'\t',
    };
    let mut table = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(false)
        .from_reader(reader);
    let headers = table.byte_headers().map_err(|source| DataError::Csv {
        path: path.to_path_buf(),
        line: 1,
        source,
    })?;
    let column = column_of(path, headers, text_field)?;
    Ok(Passages::Table {
        records: table.into_byte_records(),
        path: path.to_path_buf(),
        column,
    })
}

/// Reads a sentiment lexicon: one `word<TAB>valence` per line (further
/// columns ignored), `#` comments and blank lines skipped. Returns the
/// entries and the file's sha256.
pub fn read_lexicon(path: &Path) -> Result<(Vec<(String, f32)>, String), DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let sha = hex(&Sha256::digest(&bytes));
    let mut out = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let n = i as u64 + 1;
        let line = std::str::from_utf8(line).map_err(|_| DataError::NotUtf8 {
            path: path.to_path_buf(),
            line: n,
        })?;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let mut cols = line.split('\t');
        let word = cols.next().unwrap_or_default().trim();
        let valence = cols.next().and_then(|v| v.trim().parse::<f32>().ok());
        match valence {
            Some(v) if !word.is_empty() && v.is_finite() => out.push((word.to_string(), v)),
            _ => {
                return Err(DataError::Malformed {
                    path: path.to_path_buf(),
                    line: n,
                    message: "expected `word<TAB>valence`".into(),
                })
            }
        }
    }
    if out.is_empty() {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok((out, sha))
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn labels() -> Vec<String> {
        vec!["neg".into(), "pos".into()]
    }

    fn file(ext: &str, content: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(ext).tempfile().unwrap();
        f.write_all(content).unwrap();
        f
    }

    #[test]
    fn reads_a_whole_text_and_names_the_line_of_bad_utf8() {
        let f = file(".txt", "Une été.\nSecond line.\n".as_bytes());
        assert_eq!(read_text(f.path()).unwrap(), "Une été.\nSecond line.\n");
        let f = file(".txt", b"ok\nstill ok\nbad \xff here\n");
        match read_text(f.path()) {
            Err(DataError::NotUtf8 { line, .. }) => assert_eq!(line, 3),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            read_text(Path::new("/nonexistent/article.txt")),
            Err(DataError::Io { .. })
        ));
    }

    #[test]
    fn reads_jsonl_csv_and_tsv() {
        let j = file(
            ".jsonl",
            b"{\"text\":\"good\",\"label\":\"pos\"}\n\n{\"text\":\"bad\",\"label\":\"neg\"}\n",
        );
        let r = read_labeled(&DataSpec::new(j.path()), &labels(), false).unwrap();
        assert_eq!(
            r.examples,
            [
                Example {
                    text: "good".into(),
                    label: 1,
                    tags: vec![],
                },
                Example {
                    text: "bad".into(),
                    label: 0,
                    tags: vec![],
                }
            ]
        );
        let c = file(".csv", b"label,text\npos,\"good, really\"\nneg,bad\n");
        let r = read_labeled(&DataSpec::new(c.path()), &labels(), false).unwrap();
        assert_eq!(r.examples[0].text, "good, really");
        let t = file(".tsv", b"sentence\ty\nfine\t1\n");
        let spec = DataSpec {
            text: "sentence".into(),
            label: "y".into(),
            label_map: [("1".to_string(), "pos".to_string())].into(),
            ..DataSpec::new(t.path())
        };
        assert_eq!(
            read_labeled(&spec, &labels(), false).unwrap().examples[0].label,
            1
        );
        // Skipped labels are left out before the label check (an unknown
        // label that is skipped is no error), and are not counted as skips.
        let j = file(
            ".jsonl",
            b"{\"text\": \"a\", \"label\": \"odd\"}\n{\"text\": \"b\", \"label\": \"pos\"}\n",
        );
        let spec = DataSpec {
            skip_labels: vec!["odd".into()],
            ..DataSpec::new(j.path())
        };
        let r = read_labeled(&spec, &labels(), false).unwrap();
        assert_eq!((r.examples.len(), r.skipped), (1, 0));
        assert_eq!(r.examples[0].text, "b");
    }

    #[test]
    fn errors_name_file_and_line() {
        // The error reading a file of this extension and content, and the
        // file's path.
        let error = |ext: &str, content: &[u8]| {
            let f = file(ext, content);
            let e = read_labeled(&DataSpec::new(f.path()), &labels(), false)
                .unwrap_err()
                .to_string();
            (e, f.path().display().to_string())
        };
        let (e, path) = error(
            ".jsonl",
            b"{\"text\":\"a\",\"label\":\"pos\"}\n{\"text\":\"b\",\"label\":\"meh\"}\n",
        );
        assert!(e.contains(":2: unknown label \"meh\""), "{e}");
        assert!(e.contains(&path));
        let (e, _) = error(
            ".jsonl",
            b"{\"text\":\"a\",\"label\":\"pos\"}\n{\"text\":\"b\"\n",
        );
        assert!(
            e.contains(":2: invalid JSON at column 11 of that line: EOF while parsing an object"),
            "{e}"
        );
        let (e, _) = error(".jsonl", b"{\"label\":\"pos\"}\n");
        assert!(
            e.contains(":1: missing field \"text\" (the line has \"label\")"),
            "{e}"
        );
        let (e, _) = error(".jsonl", b"{\"text\":\"a\",\"label\":\"pos\"}\n\xff\xfe\n");
        assert!(e.contains(":2: not valid UTF-8"), "{e}");
        let (e, _) = error(".csv", b"label,body\npos,x\n");
        assert!(
            e.contains("no column \"text\" (the file has \"label\", \"body\")"),
            "{e}"
        );
        let (e, _) = error(".jsonl", b"{\"text\":[1],\"label\":\"pos\"}\n");
        assert!(
            e.contains(":1: the text field \"text\" must be a string, not an array"),
            "{e}"
        );
        let (e, _) = error(".csv", b"label,text\npos,x\nneg\n");
        assert!(e.contains(":3:"), "{e}");
    }

    #[test]
    fn skip_invalid_counts_what_it_skips() {
        let j = file(
            ".jsonl",
            b"{\"text\":\"a\",\"label\":\"pos\"}\nnot json\n{\"text\":\"b\",\"label\":\"x\"}\n",
        );
        let r = read_labeled(&DataSpec::new(j.path()), &labels(), true).unwrap();
        assert_eq!(r.examples.len(), 1);
        assert_eq!(r.skipped, 2);
        assert!(r.first_skip.unwrap().contains(":2:"));
    }

    #[test]
    fn lexicon_lines_are_checked() {
        let f = file(".tsv", b"# comment\ngood\t1.9\textra\n\nbad\t-2.5\n");
        let (entries, sha) = read_lexicon(f.path()).unwrap();
        assert_eq!(
            entries,
            [("good".to_string(), 1.9), ("bad".to_string(), -2.5)]
        );
        assert_eq!(sha.len(), 64);
        let f = file(".tsv", b"good\t1.9\nbad\n");
        let e = read_lexicon(f.path()).unwrap_err().to_string();
        assert!(e.contains(":2: expected `word<TAB>valence`"), "{e}");
    }

    #[test]
    fn passages_plain_and_jsonl() {
        let plain: Vec<_> = PassageReader::new(&b"one\n\ntwo\r\n"[..], "-")
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(plain, [(1, "one".to_string()), (3, "two".to_string())]);
        let j: Vec<_> = PassageReader::new(&b"{\"text\":\"a\"}\n{\"id\":1}\n"[..], "in").collect();
        assert_eq!(j[0].as_ref().unwrap().1, "a");
        assert!(j[1]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("in:2: missing field \"text\""));
    }
}

//! Config errors: always `file:line:col: message`.

use std::fmt;

/// One problem in one file, at a position (1-based line and column; 0 when
/// the problem concerns the whole file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl ConfigError {
    pub fn new(file: impl Into<String>, line: usize, col: usize, message: impl Into<String>) -> Self {
        ConfigError { file: file.into(), line, col, message: message.into() }
    }

    /// An error about the whole file.
    pub fn file(file: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(file, 0, 0, message)
    }

    /// An error placed at the byte `offset` of `text`.
    pub fn at(file: impl Into<String>, text: &str, offset: usize, message: impl Into<String>) -> Self {
        let (line, col) = line_col(text, offset);
        Self::new(file, line, col, message)
    }

    /// An error placed at the first occurrence of `needle` (usually a quoted
    /// value) in `text`, or at the file when it does not occur.
    pub fn near(file: impl Into<String>, text: &str, needle: &str, message: impl Into<String>) -> Self {
        let quoted = format!("\"{needle}\"");
        let offset = text.find(&quoted).or_else(|| if needle.is_empty() { None } else { text.find(needle) });
        match offset {
            Some(o) => Self::at(file, text, o, message),
            None => Self::file(file, message),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}:{}: {}", self.file, self.line, self.col, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col = before.get(line_start..).map(|s| s.chars().count()).unwrap_or(0) + 1;
    (line, col)
}

/// All errors of a configuration set (validation reports every problem, not
/// just the first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Errors(pub Vec<ConfigError>);

impl Errors {
    pub fn push(&mut self, e: ConfigError) {
        self.0.push(e);
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Errors {}

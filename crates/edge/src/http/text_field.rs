//! Free text in request bodies (key labels, stream titles, user names): a length in
//! characters, as the OpenAPI schema counts them, and no control characters, the one
//! check every such field shares so each refuses the same way.

use super::ApiError;

/// What one text field accepts.
pub(super) struct TextField {
    /// The field's name in messages.
    pub name: &'static str,
    /// The error code a refusal carries.
    pub code: &'static str,
    pub min_chars: usize,
    pub max_chars: usize,
    /// Whether `\n` and `\r` are allowed (a description), unlike other control characters.
    pub line_breaks: bool,
}

impl TextField {
    /// Refuses `text` when it is too short or long, or holds a control character.
    pub fn check(&self, text: &str) -> Result<(), ApiError> {
        let count = text.chars().count();
        let allowed = |c: char| self.line_breaks && (c == '\n' || c == '\r');
        let controls = text.chars().any(|c| c.is_control() && !allowed(c));
        if (self.min_chars..=self.max_chars).contains(&count) && !controls {
            return Ok(());
        }
        let length = if self.min_chars > 0 {
            format!("{} to {}", self.min_chars, self.max_chars)
        } else {
            format!("at most {}", self.max_chars)
        };
        let breaks = if self.line_breaks {
            " other than line breaks"
        } else {
            ""
        };
        Err(ApiError::bad_request(
            self.code,
            format!(
                "{} must be {length} characters, without control characters{breaks}",
                self.name
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TITLE: TextField = TextField {
        name: "title",
        code: "invalid_title",
        min_chars: 0,
        max_chars: 3,
        line_breaks: false,
    };

    #[test]
    fn counts_characters_and_refuses_control_characters() {
        assert!(TITLE.check("").is_ok());
        assert!(TITLE.check("ééé").is_ok());
        assert!(TITLE.check("éééé").is_err());
        assert!(TITLE.check("a\nb").is_err());
        let description = TextField {
            line_breaks: true,
            ..TITLE
        };
        assert!(description.check("a\nb").is_ok());
        assert!(description.check("a\u{7}").is_err());
        let user = TextField {
            min_chars: 1,
            ..TITLE
        };
        assert!(user.check("").is_err());
    }
}

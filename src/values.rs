//! Validated values: built once (when the config is loaded, a flag is parsed, the environment
//! is read or a request arrives), so no path can take a value that would break a file or
//! send a secret where it must not go.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A profile name that is safe as an INI section header in the AWS shared files: not empty,
/// no `[`, `]`, line breaks or other control characters, no leading or trailing space.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProfileName(String);

/// An account name: a key in the config file, a keyring entry, a menu id. Not empty, no
/// `.`, `[`, `]`, `"`, control characters, or leading or trailing space.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountName(String);

/// `s` as it is, or why it is not a usable `what`.
fn checked(s: &str, what: &str, forbidden: &[char], why_forbidden: &str) -> Result<String> {
    let why = if s.is_empty() {
        "it is empty"
    } else if s.chars().any(|c| c == '\n' || c == '\r') {
        "it holds a line break"
    } else if s.chars().any(char::is_control) {
        "it holds a control character"
    } else if s.trim() != s {
        "it starts or ends with a space"
    } else if s.contains(forbidden) {
        why_forbidden
    } else {
        return Ok(s.to_owned());
    };
    Err(Error::config(format!(
        "{s:?} is not a usable {what}: {why}"
    )))
}

impl ProfileName {
    pub fn parse(s: &str) -> Result<Self> {
        checked(
            s,
            "profile name",
            &['[', ']'],
            "`[` and `]` would break the section headers of ~/.aws/credentials",
        )
        .map(ProfileName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AccountName {
    pub fn parse(s: &str) -> Result<Self> {
        checked(
            s,
            "account name",
            &['.', '[', ']', '"'],
            "it may not hold `.`, `[`, `]` or `\"`",
        )
        .map(AccountName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An endpoint secrets may be sent to: `https://`, or `http://` on this machine only
/// (127.0.0.0/8, ::1, localhost). Shown as it was given (no slash added), which is what goes
/// into files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    url: reqwest::Url,
    text: String,
}

impl Endpoint {
    /// `what` names it in the message ("token endpoint", "STS endpoint").
    pub fn parse(what: &str, s: &str) -> Result<Self> {
        let url = crate::http::check_endpoint(what, s)?;
        // the URL parser drops tabs and line breaks; what is shown and written is the parsed
        // form whenever the text held anything of the kind
        let text = if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            url.to_string()
        } else {
            s.to_owned()
        };
        Ok(Endpoint { url, text })
    }

    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// STS `DurationSeconds`: 900 to 43200.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StsDuration(u32);

impl StsDuration {
    pub const MIN: u32 = 900;
    pub const MAX: u32 = 43200;

    pub fn new(seconds: u32) -> Result<Self> {
        if (Self::MIN..=Self::MAX).contains(&seconds) {
            Ok(StsDuration(seconds))
        } else {
            Err(Error::config(format!(
                "the duration {seconds}s is out of range; STS allows {} to {} seconds",
                Self::MIN,
                Self::MAX
            )))
        }
    }

    pub fn seconds(self) -> u32 {
        self.0
    }
}

macro_rules! string_like {
    ($t:ty) => {
        impl TryFrom<String> for $t {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                <$t>::parse(&s)
            }
        }
        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.0
            }
        }
        impl std::str::FromStr for $t {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                <$t>::parse(s)
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl std::ops::Deref for $t {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }
        impl PartialEq<str> for $t {
            fn eq(&self, o: &str) -> bool {
                self.0 == o
            }
        }
        impl PartialEq<&str> for $t {
            fn eq(&self, o: &&str) -> bool {
                self.0 == *o
            }
        }
    };
}
string_like!(ProfileName);
string_like!(AccountName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_break_a_file_are_refused() {
        for bad in [
            "", "a]b", "[a", "a\nb", "a\rb", " a", "a ", "a\tb", "a\u{7f}",
        ] {
            let e = ProfileName::parse(bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Config, "{bad:?}");
            assert!(e.to_string().contains("profile name"), "{e}");
        }
        for good in [
            "astran",
            "astran-permanent",
            "my profile",
            "default",
            "a.b",
            "é",
        ] {
            assert_eq!(ProfileName::parse(good).unwrap().as_str(), good);
        }
        for bad in ["", "a.b", "a\"b", "a]", " x", "x\n"] {
            assert!(AccountName::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(AccountName::parse("work").unwrap(), "work");
    }

    #[test]
    fn endpoints_and_durations() {
        assert!(Endpoint::parse("x", "https://demo.sts.astran.io").is_ok());
        assert!(Endpoint::parse("x", "http://127.0.0.1:9/t").is_ok());
        assert_eq!(
            Endpoint::parse("x", "https://a.io").unwrap().to_string(),
            "https://a.io"
        );
        // a line break cannot ride along into a file
        let e = Endpoint::parse("x", "https://a.io/\n[evil]").unwrap();
        assert!(!e.to_string().contains('\n'), "{e}");
        let e = Endpoint::parse("token endpoint", "http://idp.example.com/t").unwrap_err();
        assert!(e.to_string().contains("token endpoint"), "{e}");
        assert_eq!(StsDuration::new(900).unwrap().seconds(), 900);
        assert_eq!(StsDuration::new(43200).unwrap().seconds(), 43200);
        for bad in [0, 899, 43201] {
            assert_eq!(
                StsDuration::new(bad).unwrap_err().kind(),
                crate::ErrorKind::Config
            );
        }
    }

    #[test]
    fn serde_checks_too() {
        let r: std::result::Result<ProfileName, _> = serde_json::from_str("\"a]b\"");
        assert!(r.is_err());
        let p: ProfileName = serde_json::from_str("\"ok\"").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"ok\"");
    }
}

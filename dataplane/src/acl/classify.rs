//! The classifier: the first rule of an ACL that matches a packet's [`Key`].

use super::rule::{first_match, Key, Rule};

/// Finds the first matching rule of an ACL.
#[derive(Debug, Clone)]
pub struct Classifier {
    rules: Box<[Rule]>,
}

impl Classifier {
    /// Builds the classifier of `rules` (in match order).
    pub fn build(rules: &[Rule]) -> Classifier {
        Classifier {
            rules: rules.into(),
        }
    }

    /// The index of the first rule that matches `k`.
    #[inline]
    pub fn classify(&self, k: &Key) -> Option<u32> {
        first_match(&self.rules, k).map(|i| i as u32)
    }
}

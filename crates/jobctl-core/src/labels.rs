//! A job's labels (`owner`, `team`, `tags`) and the filters of `list`,
//! `status` and `health` (`--owner`, `--team`, `--tag`).
//!
//! A valid job's labels come from its [`Job`]. A job file that does not
//! validate still has labels when its TOML parses and the three keys have
//! the right types ([`Labels::read`]): a team's filtered `health` then still
//! shows its own broken job. A job whose labels cannot be known (its file
//! is gone, or is not TOML) matches every filter, so that a filter never
//! hides a problem it cannot judge.

use serde::Serialize;

use crate::job::Job;

/// What a job file says about who owns the job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Labels {
    pub owner: Option<String>,
    pub team: Option<String>,
    pub tags: Vec<String>,
}

impl Labels {
    /// A valid job's labels.
    pub fn of(job: &Job) -> Labels {
        Labels {
            owner: job.owner.clone(),
            team: job.team.clone(),
            tags: job.tags.clone(),
        }
    }

    /// The labels of a job file's text that may not validate: `None` when
    /// it is not TOML; a key of the wrong type counts as unset.
    pub fn read(text: &str) -> Option<Labels> {
        let table: toml::Table = text.parse().ok()?;
        let string = |key: &str| table.get(key)?.as_str().map(str::to_string);
        let tags = match table.get("tags").and_then(|v| v.as_array()) {
            Some(items) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            None => Vec::new(),
        };
        Some(Labels {
            owner: string("owner"),
            team: string("team"),
            tags,
        })
    }
}

/// `--owner`, `--team` and `--tag`: a job matches when it has every label
/// asked for (each `--tag` among its tags).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelFilter {
    pub owner: Option<String>,
    pub team: Option<String>,
    pub tags: Vec<String>,
}

impl LabelFilter {
    /// Nothing asked for: every job matches.
    pub fn is_empty(&self) -> bool {
        self.owner.is_none() && self.team.is_none() && self.tags.is_empty()
    }

    /// Whether a job with these labels is shown; `None` (labels that cannot
    /// be known) always is.
    pub fn matches(&self, labels: Option<&Labels>) -> bool {
        let Some(labels) = labels else {
            return true;
        };
        let same = |wanted: &Option<String>, has: &Option<String>| {
            wanted.as_ref().is_none_or(|w| has.as_ref() == Some(w))
        };
        same(&self.owner, &labels.owner)
            && same(&self.team, &labels.team)
            && self.tags.iter().all(|t| labels.tags.contains(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_of_a_file_that_does_not_validate() {
        let text = "comand = [\"x\"]\nteam = \"analytics\"\ntags = [\"etl\", 3]\nowner = 5\n";
        assert_eq!(
            Labels::read(text),
            Some(Labels {
                owner: None,
                team: Some("analytics".into()),
                tags: vec!["etl".into()],
            })
        );
        assert_eq!(Labels::read("team = 'unterminated\n"), None);
    }

    #[test]
    fn a_filter_wants_every_label_it_names() {
        let labels = Labels {
            owner: Some("data-platform".into()),
            team: Some("analytics".into()),
            tags: vec!["etl".into(), "nightly".into()],
        };
        let filter = |owner: Option<&str>, team: Option<&str>, tags: &[&str]| LabelFilter {
            owner: owner.map(str::to_string),
            team: team.map(str::to_string),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        };
        assert!(filter(None, None, &[]).is_empty());
        assert!(filter(None, None, &[]).matches(Some(&labels)));
        assert!(filter(None, Some("analytics"), &["etl"]).matches(Some(&labels)));
        assert!(filter(Some("data-platform"), None, &["etl", "nightly"]).matches(Some(&labels)));
        assert!(!filter(None, Some("web"), &[]).matches(Some(&labels)));
        assert!(!filter(None, None, &["etl", "hourly"]).matches(Some(&labels)));
        assert!(!filter(None, None, &["etl"]).matches(Some(&Labels::default())));
        // Unknown labels: shown, never hidden.
        assert!(filter(None, Some("web"), &["x"]).matches(None));
    }
}

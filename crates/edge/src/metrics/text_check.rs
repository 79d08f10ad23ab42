//! A small checker of the scrape body: it parses the OpenMetrics text and holds every
//! metric to the naming rules (prefix, snake_case, suffixes by type and unit, label
//! names from a fixed set).

use std::collections::BTreeMap;

/// Label names a metric may carry (`le` only on histogram buckets).
const ALLOWED_LABELS: [&str; 6] = ["protocol", "route", "status", "reason", "type", "method"];

#[derive(Debug, Default)]
pub(super) struct Family {
    pub kind: String,
    pub unit: Option<String>,
    pub help: bool,
    /// Sample name with its labels, and the value.
    pub samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

/// Parses `text` into families by name, checking the format and the naming rules.
pub(super) fn check(text: &str) -> Result<BTreeMap<String, Family>, String> {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut saw_eof = false;
    for line in text.lines() {
        if saw_eof {
            return Err(format!("text after # EOF: {line}"));
        }
        if line == "# EOF" {
            saw_eof = true;
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (Some(keyword), Some(name)) = (parts.next(), parts.next()) else {
                return Err(format!("bad comment line: {line}"));
            };
            let value = parts.next().unwrap_or_default();
            let family = families.entry(name.to_owned()).or_default();
            match keyword {
                "HELP" if !value.is_empty() => family.help = true,
                "TYPE" => family.kind = value.to_owned(),
                "UNIT" => family.unit = Some(value.to_owned()),
                _ => return Err(format!("bad comment line: {line}")),
            }
            continue;
        }
        let (name, labels, value) = parse_sample(line)?;
        let family = family_of(&families, &name)
            .ok_or_else(|| format!("sample {name} has no # TYPE before it"))?;
        if let Some(family) = families.get_mut(&family) {
            family.samples.push((name, labels, value));
        }
    }
    if !saw_eof {
        return Err("no # EOF".to_owned());
    }
    for (name, family) in &families {
        check_family(name, family)?;
    }
    Ok(families)
}

fn check_family(name: &str, family: &Family) -> Result<(), String> {
    let snake = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !name.starts_with("onair_") || !snake || name.contains("__") || name.ends_with('_') {
        return Err(format!("{name}: not onair_ + snake_case"));
    }
    if !family.help {
        return Err(format!("{name}: no HELP"));
    }
    if let Some(unit) = &family.unit {
        if !name.ends_with(&format!("_{unit}")) {
            return Err(format!("{name}: unit {unit} is not its suffix"));
        }
    }
    if name.contains("bytes") && family.unit.as_deref() != Some("bytes") {
        return Err(format!("{name}: byte figures need the bytes unit"));
    }
    if name.ends_with("_total") {
        return Err(format!("{name}: the family name must not end in _total"));
    }
    for (sample, labels, value) in &family.samples {
        let suffix = &sample[name.len()..];
        let allowed_suffixes: &[&str] = match family.kind.as_str() {
            "counter" => &["_total"],
            "gauge" => &[""],
            "histogram" => &["_bucket", "_sum", "_count"],
            other => return Err(format!("{name}: unexpected type {other:?}")),
        };
        if !allowed_suffixes.contains(&suffix) {
            return Err(format!("{sample}: wrong suffix for a {}", family.kind));
        }
        for label in labels.keys() {
            let bucket_le = suffix == "_bucket" && label == "le";
            if !bucket_le && !ALLOWED_LABELS.contains(&label.as_str()) {
                return Err(format!("{sample}: label {label} is not allowed"));
            }
        }
        if !value.is_finite() || *value < 0.0 {
            return Err(format!("{sample}: value {value}"));
        }
    }
    Ok(())
}

/// The family a sample belongs to: the longest declared name it starts with.
fn family_of(families: &BTreeMap<String, Family>, sample: &str) -> Option<String> {
    families
        .keys()
        .filter(|name| sample.starts_with(name.as_str()))
        .max_by_key(|name| name.len())
        .cloned()
}

type Sample = (String, BTreeMap<String, String>, f64);

fn parse_sample(line: &str) -> Result<Sample, String> {
    let bad = || format!("bad sample line: {line}");
    let (name, rest) = match line.find(['{', ' ']) {
        Some(at) => line.split_at(at),
        None => return Err(bad()),
    };
    let mut labels = BTreeMap::new();
    let rest = if let Some(body) = rest.strip_prefix('{') {
        let end = body.find("} ").ok_or_else(bad)?;
        for pair in split_labels(&body[..end]) {
            let (key, value) = pair.split_once('=').ok_or_else(bad)?;
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .ok_or_else(bad)?;
            if labels.insert(key.to_owned(), value.to_owned()).is_some() {
                return Err(format!("duplicate label {key}: {line}"));
            }
        }
        &body[end + 1..]
    } else {
        rest
    };
    let value: f64 = rest.trim().parse().map_err(|_| bad())?;
    Ok((name.to_owned(), labels, value))
}

/// Splits `a="x",b="y"` at commas outside quotes.
fn split_labels(body: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in body.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < body.len() {
        out.push(&body[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_well_formed_body_and_refuses_bad_names() {
        let good = "# HELP onair_plays Plays.\n# TYPE onair_plays counter\n\
                    onair_plays_total{protocol=\"rtmp\"} 3\n# EOF\n";
        let families = check(good).unwrap();
        assert_eq!(families["onair_plays"].samples.len(), 1);
        let bad_label = good.replace("protocol=", "stream=");
        assert!(check(&bad_label).unwrap_err().contains("not allowed"));
        let bad_name = good.replace("onair_plays", "onair_Plays");
        assert!(check(&bad_name).is_err());
        let bad_suffix = good.replace("onair_plays_total{", "onair_plays{");
        assert!(check(&bad_suffix).is_err());
        assert!(check(good.trim_end_matches("# EOF\n")).is_err());
    }
}

//! What the senders send (`--mix`): chat, like taps, gifts and taps of an aggregated
//! custom event, in fixed proportions, interleaved evenly and deterministically.

use std::fmt;
use std::str::FromStr;

/// One kind of inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Chat,
    Like,
    Gift,
    /// A custom event the server aggregates (`--wave-name`).
    Wave,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Chat, Kind::Like, Kind::Gift, Kind::Wave];

    fn name(self) -> &'static str {
        match self {
            Kind::Chat => "chat",
            Kind::Like => "like",
            Kind::Gift => "gift",
            Kind::Wave => "wave",
        }
    }
}

/// Weights of each kind, e.g. `chat:40,like:30,gift:10,wave:20`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Mix {
    weights: [u32; 4],
    /// One cycle of kinds, as many of each as its weight, spread evenly (smooth
    /// weighted round robin).
    schedule: Vec<Kind>,
}

impl Mix {
    fn new(weights: [u32; 4]) -> Mix {
        let total: i64 = weights.iter().map(|&w| i64::from(w)).sum();
        let mut current = [0i64; 4];
        let schedule = (0..total)
            .map(|_| {
                for (c, w) in current.iter_mut().zip(weights) {
                    *c += i64::from(w);
                }
                let (best, _) = current
                    .iter()
                    .enumerate()
                    .max_by_key(|(i, c)| (**c, std::cmp::Reverse(*i)))
                    .unwrap_or((0, &0));
                current[best] -= total;
                Kind::ALL[best]
            })
            .collect();
        Mix { weights, schedule }
    }

    /// The share of messages that are chat (the only kind broadcast one by one).
    pub(super) fn chat_share(&self) -> f64 {
        f64::from(self.weights[0]) / self.schedule.len().max(1) as f64
    }

    pub(super) fn is_chat_only(&self) -> bool {
        self.weights[1..].iter().all(|&w| w == 0)
    }

    /// The kind of the `n`th message: senders count their messages from their own
    /// offset, so together they follow the weights closely at every moment.
    pub(super) fn kind(&self, n: u64) -> Kind {
        let len = self.schedule.len().max(1) as u64;
        self.schedule
            .get((n % len) as usize)
            .copied()
            .unwrap_or(Kind::Chat)
    }
}

impl FromStr for Mix {
    type Err = String;

    fn from_str(text: &str) -> Result<Mix, String> {
        let mut weights = [0u32; 4];
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once(':')
                .ok_or_else(|| format!("{part:?}: want kind:weight"))?;
            let i = Kind::ALL
                .iter()
                .position(|k| k.name() == name)
                .ok_or_else(|| format!("{name:?}: kinds are chat, like, gift, wave"))?;
            weights[i] = weight
                .parse()
                .map_err(|_| format!("{weight:?}: a weight is a whole number"))?;
        }
        let total: u32 = weights.iter().sum();
        if total == 0 || total > 1000 {
            return Err("the weights must add up to 1..=1000".into());
        }
        Ok(Mix::new(weights))
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = Kind::ALL
            .iter()
            .zip(self.weights)
            .filter(|(_, w)| *w > 0)
            .map(|(k, w)| format!("{}:{w}", k.name()))
            .collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_weights_over_a_cycle() {
        let mix: Mix = "chat:40,like:30,gift:10,wave:20".parse().unwrap();
        let mut counts = [0; 4];
        for n in 0..100 {
            let kind = mix.kind(n);
            counts[Kind::ALL.iter().position(|k| *k == kind).unwrap()] += 1;
        }
        assert_eq!(counts, [40, 30, 10, 20]);
        assert_eq!(mix.to_string(), "chat:40,like:30,gift:10,wave:20");
        assert!(!mix.is_chat_only());
        let chat: Mix = "chat:1".parse().unwrap();
        assert!(chat.is_chat_only());
        assert_eq!(chat.kind(7), Kind::Chat);
        assert!("chat:0".parse::<Mix>().is_err());
        assert!("talk:1".parse::<Mix>().is_err());
    }
}

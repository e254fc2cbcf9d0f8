//! The language-consistency reward of R1: the share of the words of the
//! chain of thought that are in the target language. Words are found by
//! script (Han characters count one word each; Latin, Cyrillic, Hangul and
//! kana runs count one word each); a lexicon of frequent function words
//! tells English from other Latin-script languages. Languages are pluggable
//! through [`LanguageProfile`].

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock};

/// A word of the text and the script it is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Word<'t> {
    Han(char),
    Latin(&'t str),
    Cyrillic(&'t str),
    Kana(&'t str),
    Hangul(&'t str),
}

/// Decides which words belong to one language.
pub trait LanguageProfile: Send + Sync {
    fn owns(&self, word: &Word<'_>) -> bool;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    Han,
    Latin,
    Cyrillic,
    Kana,
    Hangul,
}

fn script(c: char) -> Option<Script> {
    let u = c as u32;
    Some(match u {
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0xF900..=0xFAFF => Script::Han,
        0x3040..=0x30FF | 0x31F0..=0x31FF => Script::Kana,
        0xAC00..=0xD7AF | 0x1100..=0x11FF => Script::Hangul,
        0x0400..=0x04FF => Script::Cyrillic,
        _ if c.is_ascii_alphabetic() => Script::Latin,
        0x00C0..=0x024F if c.is_alphabetic() => Script::Latin,
        _ => return None,
    })
}

/// Splits text into words; digits, punctuation and math are not words.
pub fn words(text: &str) -> Vec<Word<'_>> {
    let mut out = Vec::new();
    let mut run: Option<(Script, usize)> = None;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (pos, c) = chars[i];
        let s = script(c);
        let continues_run = match (run, s) {
            (Some((rs, _)), Some(cs)) => rs == cs && cs != Script::Han,
            // Apostrophes inside Latin words: don't, l'eau.
            (Some((Script::Latin, _)), None) => {
                c == '\''
                    && chars
                        .get(i + 1)
                        .is_some_and(|(_, n)| script(*n) == Some(Script::Latin))
            }
            _ => false,
        };
        if !continues_run {
            if let Some((rs, start)) = run.take() {
                push_word(&mut out, rs, &text[start..pos]);
            }
            match s {
                Some(Script::Han) => out.push(Word::Han(c)),
                Some(other) => run = Some((other, pos)),
                None => {}
            }
        }
        i += 1;
    }
    if let Some((rs, start)) = run {
        push_word(&mut out, rs, &text[start..]);
    }
    out
}

fn push_word<'t>(out: &mut Vec<Word<'t>>, script: Script, word: &'t str) {
    out.push(match script {
        Script::Latin => Word::Latin(word),
        Script::Cyrillic => Word::Cyrillic(word),
        Script::Kana => Word::Kana(word),
        Script::Hangul => Word::Hangul(word),
        Script::Han => return,
    });
}

/// Frequent function words of other Latin-script languages that are not
/// English words.
static NOT_ENGLISH: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    [
        // German
        "und",
        "der",
        "das",
        "ist",
        "nicht",
        "ein",
        "eine",
        "einen",
        "dem",
        "den",
        "mit",
        "auf",
        "sich",
        "auch",
        "wir",
        "ich",
        "sie",
        "aber",
        "oder",
        "wenn",
        "dann",
        "wird",
        "sind",
        "zu",
        "von",
        "dass",
        "noch",
        "nach",
        "bei",
        "ja",
        "nein",
        "durch",
        "gleich",
        "zwei",
        "drei",
        "vier",
        "zahl",
        "ergebnis",
        "rechnen",
        "also",
        "wie",
        // French
        "la",
        "le",
        "les",
        "des",
        "une",
        "est",
        "et",
        "du",
        "au",
        "aux",
        "avec",
        "pour",
        "dans",
        "que",
        "qui",
        "sur",
        "pas",
        "sont",
        "nous",
        "vous",
        "ils",
        "elle",
        "cette",
        "mais",
        "ou",
        "donc",
        "alors",
        "deux",
        "trois",
        "nombre",
        "calculer",
        "puis",
        "ensuite",
        "egal",
        "soit",
        "somme",
        // Spanish / Portuguese / Italian
        "el",
        "los",
        "las",
        "del",
        "una",
        "por",
        "para",
        "es",
        "y",
        "con",
        "lo",
        "como",
        "pero",
        "muy",
        "sus",
        "esta",
        "este",
        "entonces",
        "dos",
        "tres",
        "numero",
        "resultado",
        "os",
        "um",
        "uma",
        "nao",
        "sim",
        "entao",
        "il",
        "della",
        "che",
        "sono",
        "gli",
        "di",
        "perche",
        "allora",
        "quindi",
        "uguale",
    ]
    .into_iter()
    .collect()
});

/// English: Latin-script words written in ASCII that are not frequent words
/// of another Latin-script language.
#[derive(Debug, Default)]
pub struct English;

impl LanguageProfile for English {
    fn owns(&self, word: &Word<'_>) -> bool {
        match word {
            Word::Latin(w) => {
                w.is_ascii()
                    && !NOT_ENGLISH.contains(w.to_ascii_lowercase().replace('\'', "").as_str())
            }
            _ => false,
        }
    }
}

/// Chinese: Han characters.
#[derive(Debug, Default)]
pub struct Chinese;

impl LanguageProfile for Chinese {
    fn owns(&self, word: &Word<'_>) -> bool {
        matches!(word, Word::Han(_))
    }
}

/// The languages the reward knows, by code.
#[derive(Clone)]
pub struct LanguageRegistry {
    profiles: HashMap<String, Arc<dyn LanguageProfile>>,
}

impl std::fmt::Debug for LanguageRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.profiles.keys()).finish()
    }
}

impl Default for LanguageRegistry {
    fn default() -> Self {
        let mut registry = Self {
            profiles: HashMap::new(),
        };
        registry.register("en", Arc::new(English));
        registry.register("zh", Arc::new(Chinese));
        registry
    }
}

/// The share of words in the target language.
#[derive(Debug, Clone, PartialEq)]
pub struct Consistency {
    pub score: f64,
    pub target_words: usize,
    pub words: usize,
}

impl LanguageRegistry {
    pub fn register(&mut self, code: &str, profile: Arc<dyn LanguageProfile>) {
        self.profiles.insert(code.to_ascii_lowercase(), profile);
    }

    pub fn knows(&self, code: &str) -> bool {
        self.profiles.contains_key(&code.to_ascii_lowercase())
    }

    /// The share of the words of `text` in language `code`; 0 when the text
    /// has no words. `None` for an unknown language.
    pub fn consistency(&self, code: &str, text: &str) -> Option<Consistency> {
        let profile = self.profiles.get(&code.to_ascii_lowercase())?;
        let all = words(text);
        let target_words = all.iter().filter(|w| profile.owns(w)).count();
        let score = if all.is_empty() {
            0.0
        } else {
            target_words as f64 / all.len() as f64
        };
        Some(Consistency {
            score,
            target_words,
            words: all.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(code: &str, text: &str) -> f64 {
        LanguageRegistry::default()
            .consistency(code, text)
            .unwrap()
            .score
    }

    #[test]
    fn english_reasoning_is_fully_english() {
        assert_eq!(
            score("en", "First add the ones: 7 + 5 = 12, so we carry 1."),
            1.0
        );
    }

    #[test]
    fn mixed_english_and_chinese_is_measured_word_by_word() {
        // 4 English words, 4 Han characters.
        let text = "We need 计算结果 the sum";
        assert_eq!(score("en", text), 0.5);
        assert_eq!(score("zh", text), 0.5);
        assert_eq!(score("zh", "我们先计算个位"), 1.0);
    }

    #[test]
    fn other_latin_languages_are_not_english() {
        assert!(score("en", "Nous calculons la somme des deux nombres") < 0.7);
        assert!(score("en", "Wir rechnen und das ist gleich") < 0.5);
    }

    #[test]
    fn text_without_words_scores_zero_and_unknown_languages_are_none() {
        assert_eq!(score("en", "1 + 2 = 3"), 0.0);
        assert!(
            LanguageRegistry::default()
                .consistency("xx", "hello")
                .is_none()
        );
    }
}

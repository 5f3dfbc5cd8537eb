//! The reference vector of a passage (training and explanations use it;
//! the model's fast path must agree with it) and the byte spans of chosen
//! features.

use super::define::*;
use super::lexicon::Lexicon;
use super::*;
use crate::text::TokenKind;

impl Featurizer {
    /// The feature an occurrence's hash `h` names, if known: character
    /// n-grams have an index of their own.
    fn feature_of(&self, h: u64, occ: &Occurrence) -> Option<u32> {
        match occ {
            Occurrence::Chars { .. } => self.char_index.get(h),
            _ => self.index.get(h),
        }
    }

    /// One word's character n-gram vector: each known n-gram of `_word_`,
    /// count × idf, by feature. Returns its squared norm and the vector.
    pub(crate) fn word_chars<'s>(
        &self,
        word: &str,
        scratch: &'s mut Scratch,
    ) -> (f32, &'s [(u32, f32)]) {
        let Scratch {
            grams, word_vec, ..
        } = scratch;
        word_vec.clear();
        let index = &self.char_index;
        for_each_char_gram(&self.vocab.settings, word, grams, |h, _, _| {
            if let Some(i) = index.get(h) {
                word_vec.push((i, 1.0));
            }
        });
        word_vec.sort_unstable_by_key(|&(j, _)| j);
        // Each n-gram once, with its count, then × idf.
        super::add_equal_keys(word_vec);
        let mut norm = 0.0f32;
        for (j, v) in word_vec.iter_mut() {
            *v *= self.vocab.idf[*j as usize];
            norm += *v * *v;
        }
        (norm, word_vec)
    }

    /// The lexicon score feature and its value for the tokens in `ws`.
    #[inline]
    pub(super) fn lexicon_score(&self, ws: &Scratch) -> Option<(u32, f32)> {
        let j = self.lexicon_score?;
        Some((
            j,
            self.vocab.settings.lexicon_weight
                * Lexicon::compound(&ws.tokens, &ws.lex, &ws.valenced),
        ))
    }

    /// The vector of `passage` (sorted by feature index), also left in
    /// `ws` for [`Scratch::vector`] and [`Featurizer::spans`]: the
    /// reference definition of a passage's vector (training and
    /// explanations use it; the model's fast path must agree with it).
    pub fn transform<'s>(&self, passage: &str, ws: &'s mut Scratch) -> &'s [(u32, f32)] {
        self.scan(&self.index, None, passage, ws)
            .words(&self.markers);
        ws.hits.sort_unstable();
        let mut vector = std::mem::take(&mut ws.vector);
        vector.clear();
        let mut norm = 0.0f32;
        for run in ws.hits.chunk_by(|a, b| a == b) {
            let j = run[0];
            let v = self.tf(run.len()) * self.vocab.idf[j as usize];
            norm += v * v;
            vector.push((j, v));
        }
        if norm > 0.0 {
            let inv = norm.sqrt().recip();
            vector.iter_mut().for_each(|(_, v)| *v *= inv);
        }
        // The features outside the norm: the compound score, the first
        // word, the market markers.
        let normed = vector.len();
        if let Some((j, v)) = self.lexicon_score(ws).filter(|&(_, v)| v != 0.0) {
            vector.push((j, v));
        }
        if let Some(j) = ws.first {
            vector.push((j, super::context::FIRST_WORD_VALUE));
        }
        for &(j, count) in ws.market.iter().flatten() {
            vector.push((j, self.tf(count as usize)));
        }
        if vector.len() > normed {
            vector.sort_by_key(|&(j, _)| j);
        }
        if self.vocab.settings.char_range().is_some() {
            // Each word's characters: a misspelt word's are the word meant's.
            let words: Vec<&str> = (ws.tokens.iter().enumerate())
                .filter(|(_, t)| t.kind == TokenKind::Word)
                .map(|(i, t)| {
                    self.meant(&ws.aliased, i)
                        .map_or(&passage[t.start as usize..t.end as usize], |m| m.1)
                })
                .collect();
            let mut acc = std::mem::take(&mut ws.char_acc);
            acc.clear();
            let mut total = 0.0f32;
            for &w in &words {
                let (sq, word) = self.word_chars(w, ws);
                total += sq;
                acc.extend_from_slice(word);
            }
            if total > 0.0 {
                let scale = self.vocab.settings.char_weight / total.sqrt();
                acc.sort_by_key(|&(j, _)| j);
                for run in acc.chunk_by(|a, b| a.0 == b.0) {
                    let sum: f32 = run.iter().map(|&(_, v)| v).sum();
                    vector.push((run[0].0, sum * scale));
                }
                vector.sort_by_key(|&(j, _)| j);
            }
            ws.char_acc = acc;
        }
        ws.vector = vector;
        &ws.vector
    }

    /// The word token `token` is read as, when it is misspelt (see
    /// `typos`): its hash and text. `aliased` is a scan's, in token order.
    fn meant(&self, aliased: &[(u32, u64)], token: usize) -> Option<(u64, &str)> {
        let k = aliased
            .binary_search_by_key(&token, |&(t, _)| t as usize)
            .ok()?;
        let (_, h) = aliased.get(k)?;
        let j = self.index.get(*h)?;
        Some((*h, self.vocab.terms.get(j as usize)?))
    }

    /// Byte spans in `passage` of each feature index in `wanted` (sorted,
    /// deduplicated spans per feature), from the tokens that the last
    /// [`Featurizer::transform`] of `passage` left in `ws`.
    pub fn spans(&self, passage: &str, ws: &mut Scratch, wanted: &[u32]) -> Vec<Vec<(u32, u32)>> {
        let mut out = vec![Vec::new(); wanted.len()];
        let Scratch {
            tokens,
            grams,
            lex,
            aliased,
            ..
        } = ws;
        for_each_feature(
            &self.vocab.settings,
            &self.lexicon,
            lex,
            true,
            passage,
            tokens,
            grams,
            |t| self.meant(aliased, t),
            |h, occ| {
                if let Some(i) = self.feature_of(h, &occ) {
                    if let Some(slot) = wanted.iter().position(|&w| w == i) {
                        out[slot].push(occurrence_span(tokens, occ));
                    }
                }
            },
        );
        for spans in &mut out {
            spans.sort_unstable();
            spans.dedup();
        }
        out
    }

    /// The passage tokens behind each feature of the passage that the last
    /// [`Featurizer::transform`] of `passage` left in `ws`: `(feature,
    /// token, share)` triples whose shares sum to 1 per feature, into `out`
    /// (sorted by feature, then token). What explanations use to fold
    /// features into the passage's words:
    ///
    /// - a word n-gram: its tokens, equally (each occurrence equally);
    /// - a character n-gram, `<caps>`, `NOT_word`, `<title>`, a `<lex±>`
    ///   or `<mkt±>` marker: the word it came from, each occurrence equally;
    /// - the compound score ([`LEXICON_SCORE`]): each lexicon word in
    ///   proportion to its term in the score's sum (negation, boosters and
    ///   "but" included; see [`Lexicon::valence_terms`]), so a negated
    ///   word's share has the opposite sign.
    pub fn token_shares(&self, passage: &str, ws: &mut Scratch, out: &mut Vec<(u32, u32, f32)>) {
        out.clear();
        let Scratch {
            tokens,
            grams,
            lex,
            valenced,
            aliased,
            ..
        } = ws;
        let mut terms = vec![0f32; tokens.len()];
        if !self.lexicon.is_empty() {
            Lexicon::valence_terms(tokens, lex, valenced, |i, v| {
                if let Some(t) = terms.get_mut(i) {
                    *t = v;
                }
            });
        }
        for_each_feature(
            &self.vocab.settings,
            &self.lexicon,
            lex,
            true,
            passage,
            tokens,
            grams,
            |t| self.meant(aliased, t),
            |h, occ| {
                let Some(j) = self.feature_of(h, &occ) else {
                    return;
                };
                match occ {
                    Occurrence::Words { first, n } => {
                        for t in first..first + n {
                            out.push((j, t as u32, 1.0 / n as f32));
                        }
                    }
                    Occurrence::Lexicon { token, marker } if marker == LEXICON_SCORE => {
                        out.push((j, token as u32, terms.get(token).copied().unwrap_or(0.0)));
                    }
                    Occurrence::Caps { token }
                    | Occurrence::Lexicon { token, .. }
                    | Occurrence::Negated { token }
                    | Occurrence::Title { token }
                    | Occurrence::First { token }
                    | Occurrence::Market { token, .. }
                    | Occurrence::Chars { token, .. } => out.push((j, token as u32, 1.0)),
                }
            },
        );
        out.sort_unstable_by_key(|&(j, t, _)| (j, t));
        // One entry per (feature, token), then shares normalised per feature.
        out.dedup_by(|next, kept| {
            let same = next.0 == kept.0 && next.1 == kept.1;
            if same {
                kept.2 += next.2;
            }
            same
        });
        for run in out.chunk_by_mut(|a, b| a.0 == b.0) {
            let total: f32 = run.iter().map(|e| e.2).sum();
            for e in run {
                e.2 = if total != 0.0 { e.2 / total } else { 0.0 };
            }
        }
    }

    /// The tokens the last [`Featurizer::transform`] left in `ws`, as
    /// (kind, byte span of the word written) pairs. The two parts of a
    /// contraction read as two words ("ca" + "n't", see
    /// `text::contractions`) both span the word as written ("can't"): one
    /// word to a reader.
    pub(crate) fn token_spans(
        ws: &Scratch,
    ) -> impl Iterator<Item = (crate::text::TokenKind, (u32, u32))> + '_ {
        use crate::text::contractions::NOT;
        // Every "not" in `made` is a split's second part (a detached
        // "n't" is not split), its first part the token before.
        let second = |i: usize| {
            ws.tokens.get(i).is_some_and(|t| t.hash == NOT)
                && ws.made.binary_search(&(i as u32)).is_ok()
        };
        ws.tokens.iter().enumerate().map(move |(i, t)| {
            let (mut start, mut end) = (t.start, t.end);
            if second(i) {
                start = i
                    .checked_sub(1)
                    .and_then(|p| ws.tokens.get(p))
                    .map_or(start, |p| p.start);
            } else if second(i + 1) {
                end = ws.tokens.get(i + 1).map_or(end, |n| n.end);
            }
            (t.kind, (start, end))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{fitted, index_of};
    use super::*;

    #[test]
    fn tfidf_matches_hand_computation() {
        // Unigrams only, 3 documents.
        let s = FeatureSettings {
            word_ngrams: [1, 1],
            caps_marker: false,
            ..Default::default()
        };
        let f = fitted(s, &["a b", "a c", "a a d"]);
        assert_eq!(f.vocabulary().terms, ["a", "b", "c", "d"]);
        // smooth idf = ln((1 + n) / (1 + df)) + 1
        let idf = |df: f64| ((4.0 / (1.0 + df)).ln() + 1.0) as f32;
        assert!((f.vocabulary().idf[0] - idf(3.0)).abs() < 1e-6);
        assert!((f.vocabulary().idf[3] - idf(1.0)).abs() < 1e-6);
        let mut ws = Scratch::default();
        f.transform("a a d", &mut ws);
        // sublinear tf: a -> 1 + ln 2, d -> 1
        let va = (1.0 + 2f32.ln()) * idf(3.0);
        let vd = idf(1.0);
        let norm = (va * va + vd * vd).sqrt();
        assert_eq!(ws.vector.len(), 2);
        assert_eq!(ws.vector[0].0, 0);
        assert!((ws.vector[0].1 - va / norm).abs() < 1e-6);
        assert_eq!(ws.vector[1].0, 3);
        assert!((ws.vector[1].1 - vd / norm).abs() < 1e-6);
        // unknown words contribute nothing; empty vector stays empty
        f.transform("zzz", &mut ws);
        assert!(ws.vector.is_empty());
    }

    #[test]
    fn bigrams_markers_and_spans() {
        let f = fitted(
            FeatureSettings::default(),
            &["You WON'T believe this!!", "believe this"],
        );
        let terms = &f.vocabulary().terms;
        for t in ["believe this", "this !!", "<caps>", "won't believe", "you"] {
            assert!(terms.iter().any(|x| x == t), "{t} missing from {terms:?}");
        }
        let passage = "I believe this, and I BELIEVE THIS";
        let mut ws = Scratch::default();
        f.transform(passage, &mut ws);
        let bt = index_of(&f, "believe this");
        let caps = index_of(&f, "<caps>");
        let spans = f.spans(passage, &mut ws, &[bt, caps]);
        let text: Vec<&str> = spans[0]
            .iter()
            .map(|&(s, e)| &passage[s as usize..e as usize])
            .collect();
        assert_eq!(text, ["believe this", "BELIEVE THIS"]);
        assert_eq!(spans[1].len(), 2);
    }
}

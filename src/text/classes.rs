//! Identity and named-entity word classes: nationalities, countries,
//! cities, religions, sexual orientations and gender identities, and
//! common first and last names. With `identity_classes` on, the featurizer
//! replaces each such word by its class token (`<nationality>`,
//! `<religion>`, …; see [`apply`]), so swapping one for another in a
//! sentence cannot change any score, and no head learns that a group,
//! a place or a person is good or bad. A class token has no character
//! n-grams and no lexicon valence.
//!
//! Words that are also common lower-case words ("turkey", "china", "rose",
//! "will", "bush") are matched only when capitalised, as are all names and
//! places; the lists are ours.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::{hash_str, Token, TokenKind};

/// (class token, whether a word must be capitalised to count, words).
const CLASSES: &[(&str, bool, &str)] = &[
    ("<nationality>", false, "afghan albanian algerian american andorran angolan argentine argentinian armenian \
      australian austrian azerbaijani bahamian bahraini bangladeshi barbadian belarusian belgian belizean beninese \
      bhutanese bolivian bosnian botswanan brazilian british bruneian bulgarian burmese burundian cambodian \
      cameroonian canadian chadian chilean chinese colombian congolese croatian cuban cypriot czech danish \
      djiboutian dominican dutch ecuadorian egyptian emirati english eritrean estonian ethiopian fijian filipino \
      finnish french gabonese gambian georgian german ghanaian greek guatemalan guinean guyanese haitian honduran \
      hungarian icelandic indian indonesian iranian iraqi irish israeli italian ivorian jamaican japanese jordanian \
      kazakh kenyan korean kosovar kuwaiti kyrgyz laotian latvian lebanese liberian libyan lithuanian macedonian \
      malagasy malawian malaysian maldivian malian maltese mauritanian mexican moldovan mongolian montenegrin \
      moroccan mozambican namibian nepalese nepali nicaraguan nigerian norwegian omani pakistani palestinian \
      panamanian paraguayan persian peruvian polish portuguese qatari romanian russian rwandan salvadoran saudi \
      scottish senegalese serbian singaporean slovak slovenian somali sudanese spanish swedish swiss syrian \
      taiwanese tajik tanzanian thai tunisian turkish turkmen ugandan ukrainian uruguayan uzbek venezuelan \
      vietnamese welsh yemeni zambian zimbabwean european asian african arab arabic hispanic latino latina latinx \
      scandinavian caribbean"),
    ("<country>", true, "afghanistan albania algeria america andorra angola argentina armenia australia austria \
      azerbaijan bahamas bahrain bangladesh barbados belarus belgium belize benin bhutan bolivia bosnia botswana \
      brazil britain brunei bulgaria burundi cambodia cameroon canada chad chile china colombia congo croatia cuba \
      cyprus czechia denmark djibouti ecuador egypt england eritrea estonia ethiopia fiji finland france gabon \
      gambia germany ghana greece guatemala guinea guyana haiti honduras hungary iceland india indonesia iran iraq \
      ireland israel italy jamaica japan jordan kazakhstan kenya korea kosovo kuwait kyrgyzstan laos latvia \
      lebanon liberia libya lithuania luxembourg macedonia madagascar malawi malaysia maldives mali malta \
      mauritania mexico moldova mongolia montenegro morocco mozambique myanmar namibia nepal netherlands \
      nicaragua niger nigeria norway oman pakistan palestine panama paraguay peru philippines poland portugal \
      qatar romania russia rwanda scotland senegal serbia singapore slovakia slovenia somalia spain sudan sweden \
      switzerland syria taiwan tajikistan tanzania thailand tunisia turkey turkmenistan uganda ukraine uruguay \
      uzbekistan venezuela vietnam wales yemen zambia zimbabwe europe asia africa"),
    ("<city>", true, "london paris berlin madrid rome tokyo beijing shanghai moscow delhi mumbai bangalore \
      chennai kolkata karachi lahore dhaka jakarta manila seoul bangkok hanoi sydney melbourne toronto montreal \
      vancouver chicago boston houston dallas austin denver seattle portland phoenix atlanta miami detroit \
      philadelphia baltimore brooklyn manhattan cleveland pittsburgh nashville memphis orlando tampa sacramento \
      oakland minneapolis milwaukee cincinnati indianapolis charlotte raleigh honolulu anchorage dublin \
      edinburgh glasgow manchester liverpool birmingham amsterdam brussels vienna prague warsaw budapest athens \
      istanbul ankara cairo lagos nairobi johannesburg dubai riyadh tehran baghdad kabul islamabad jerusalem \
      beirut damascus lima bogota caracas havana kyiv kiev minsk oslo stockholm helsinki copenhagen lisbon \
      barcelona munich frankfurt hamburg milan naples zurich geneva taipei osaka kyoto"),
    ("<religion>", false, "christian christians christianity muslim muslims moslem islam islamic jewish jew \
      jews judaism hindu hindus hinduism buddhist buddhists buddhism sikh sikhs sikhism catholic catholics \
      catholicism protestant protestants evangelical evangelicals mormon mormons atheist atheists agnostic \
      agnostics sunni shia shiite baptist methodist lutheran presbyterian anglican quaker quakers amish"),
    ("<orientation>", false, "gay gays lesbian lesbians bisexual bisexuals transgender queer heterosexual \
      homosexual asexual pansexual nonbinary lgbt lgbtq lgbtqia"),
    ("<name>", true, "james john robert michael william david richard joseph thomas charles christopher daniel matthew \
      anthony donald steven paul andrew joshua kenneth kevin brian george timothy ronald edward jason jeffrey \
      ryan jacob gary nicholas eric jonathan stephen larry justin scott brandon benjamin samuel gregory \
      alexander patrick raymond jack dennis jerry tyler aaron jose adam nathan henry douglas zachary peter \
      kyle ethan walter noah jeremy keith roger terry gerald harold sean arthur lawrence dylan jesse bryan \
      billy bruce gabriel logan albert alan juan wayne elijah randy roy vincent ralph eugene russell bobby \
      philip louis mary patricia jennifer linda elizabeth barbara susan jessica sarah karen lisa nancy betty \
      margaret sandra ashley kimberly emily donna michelle carol amanda dorothy melissa deborah stephanie \
      rebecca sharon laura cynthia kathleen amy angela shirley anna brenda pamela emma nicole helen samantha \
      katherine christine debra rachel carolyn janet catherine maria heather diane ruth julie olivia joyce \
      virginia victoria kelly lauren christina joan evelyn judith megan andrea cheryl hannah jacqueline \
      martha gloria teresa sara madison frances kathryn janice abigail alice judy sophia denise amber doris \
      marilyn danielle beverly isabella theresa diana natalie brittany marie kayla alexis lori mohammed \
      muhammad ahmed omar hassan fatima aisha priya rahul amit sanjay wei mei yuki hiroshi kenji jamal tyrone \
      darnell latoya keisha shanice deshawn dwayne jorge carlos luis miguel pedro carmen sofia lucia diego \
      pablo ivan dmitri olga sergei vladimir hans klaus pierre francois giovanni marco luca ahmad mustafa \
      ibrahim yusuf abdul smith johnson williams jones garcia miller davis rodriguez martinez hernandez lopez \
      gonzalez wilson anderson taylor thomas moore jackson martin lee perez thompson harris sanchez clark \
      ramirez lewis robinson walker allen wright torres nguyen flores nelson campbell mitchell roberts carter \
      phillips evans turner parker collins edwards stewart morris murphy rogers morgan peterson cooper reed \
      bailey kelly howard cox ward richardson watson brooks james bennett mendoza ruiz hughes myers foster \
      sanders ross morales powell sullivan russell ortiz jenkins gutierrez perry butler barnes fisher \
      henderson coleman simmons patterson jordan reynolds hamilton graham kim gonzales alexander ramos \
      wallace griffin cole hayes chavez gibson bryant ellis stevens murray marshall owens mcdonald harrison \
      kennedy alvarez mendez castillo olson webb washington tucker freeman burns henry vasquez snyder simpson \
      crawford jimenez mason shaw gordon wagner romero hicks dixon palmer robertson holmes meyer boyd warren \
      moreno schmidt patel ferguson nichols herrera medina ryan fernandez weaver daniels stephens gardner \
      payne kelley dunn pierce arnold tran spencer peters hawkins hansen castro hoffman hart elliott \
      cunningham bradley singh kumar sharma gupta chen wang zhang liu yang huang zhao zhou xu zhu guo luo \
      tanaka suzuki watanabe yamamoto nakamura kobayashi sato ivanov petrov muller schneider fischer weber \
      becker rossi russo ferrari esposito bianchi romano dubois moreau laurent lefebvre silva santos oliveira \
      souza pereira costa"),
];

/// Token hashes are well mixed already: the map uses them as they are
/// (SipHash over each would cost more than the lookup).
#[derive(Default)]
struct Identity(u64);

impl std::hash::Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type ByHash<V> = HashMap<u64, V, std::hash::BuildHasherDefault<Identity>>;

/// Class words, by the hash of their lower-case form: (class token hash,
/// whether the word must be capitalised).
struct Table {
    words: ByHash<(u64, bool)>,
    names: ByHash<&'static str>,
    /// One bit per `hash >> 50` (16,384 bits for some 930 words): about
    /// 94% of words leave after one test.
    filter: [u64; 256],
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = Table {
            words: ByHash::default(),
            names: ByHash::default(),
            filter: [0; 256],
        };
        for &(class, capital, words) in CLASSES {
            let c = hash_str(class);
            t.names.insert(c, class);
            for w in words.split_whitespace() {
                let h = hash_str(w);
                // The first class a word is listed in wins.
                t.words.entry(h).or_insert((c, capital));
                t.filter[(h >> 56) as usize] |= 1 << ((h >> 50) & 63);
            }
        }
        t
    })
}

/// The class token's text for a class token hash.
pub fn name(hash: u64) -> Option<&'static str> {
    table().names.get(&hash).copied()
}

/// Replaces every class word among `tokens` (of `passage`) by its class
/// token: kind [`TokenKind::Class`], the class token's hash.
pub fn apply(passage: &str, tokens: &mut [Token]) {
    let t = table();
    let bytes = passage.as_bytes();
    for token in tokens.iter_mut() {
        let h = token.hash;
        if token.kind != TokenKind::Word
            || t.filter[(h >> 56) as usize] & (1 << ((h >> 50) & 63)) == 0
        {
            continue;
        }
        if let Some(&(class, capital)) = t.words.get(&h) {
            let first = bytes.get(token.start as usize).copied().unwrap_or(0);
            if !capital || first.is_ascii_uppercase() {
                token.hash = class;
                token.kind = TokenKind::Class;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::tokenize;

    fn classes(passage: &str) -> Vec<String> {
        let mut tokens = Vec::new();
        tokenize(passage, &mut tokens);
        apply(passage, &mut tokens);
        tokens.iter().map(|t| t.normalized(passage)).collect()
    }

    #[test]
    fn class_words_become_their_class() {
        assert_eq!(
            classes("Muslim and Jewish leaders met John Smith in Paris"),
            [
                "<religion>",
                "and",
                "<religion>",
                "leaders",
                "met",
                "<name>",
                "<name>",
                "in",
                "<city>"
            ]
        );
        assert_eq!(classes("a french film"), ["a", "<nationality>", "film"]);
        // places and names only when capitalised
        assert_eq!(classes("turkey and mary"), ["turkey", "and", "mary"]);
        assert_eq!(classes("Turkey and Mary"), ["<country>", "and", "<name>"]);
        assert_eq!(classes("gay rights"), ["<orientation>", "rights"]);
    }

    #[test]
    fn every_listed_word_is_one_token() {
        for &(_, _, words) in CLASSES {
            for w in words.split_whitespace() {
                let mut tokens = Vec::new();
                tokenize(w, &mut tokens);
                assert_eq!(tokens.len(), 1, "{w}");
                assert_eq!(tokens[0].hash, hash_str(w), "{w}");
            }
        }
    }
}

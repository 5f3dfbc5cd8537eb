pub fn split_article(_t: &str, _m: usize) -> Vec<std::ops::Range<usize>> { Vec::new() }

"""fraudkb index: Whoosh + jieba index of the corpus, search and export."""

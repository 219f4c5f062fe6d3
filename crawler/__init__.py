"""fraudkb crawler: fetch, decode, extract, tag and store Chinese anti-fraud notices."""

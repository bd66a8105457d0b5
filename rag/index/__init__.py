"""The index: Chroma as the store of record, and the in-memory snapshot searched by every ask (texts, offsets,
vectors, the BM25 and dense indexes, paragraph windows), with the sentence encoder that makes its vectors."""

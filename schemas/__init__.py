"""The Avro contract of the order topics (the .avsc files, every version in history/) and
the codec that reads and writes it (`schemas.codec.Codec`)."""

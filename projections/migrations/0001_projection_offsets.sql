-- Where each projector consumer group has read up to, per partition. Written in the same
-- transaction as the rows a batch of events produced, so a crash or replay never applies an
-- event twice; on start the projector seeks each partition to next_offset.
-- No schema name here: the migration runner sets search_path to the target schema.
create table projection_offsets (
    consumer_group text   not null,
    topic          text   not null,
    partition      int    not null,
    next_offset    bigint not null check (next_offset >= 0),
    primary key (consumer_group, topic, partition)
);

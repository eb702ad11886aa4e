-- The writer fence (schemas/writer_fence.py): per partition, the epoch of the writer whose
-- events the projection last counted, stored with the offset it belongs to, so a projector
-- resuming mid-log still drops what a deposed writer appended after its successor's claim.
-- -1: no claim seen (a partition projected from offset 0 learns it from the log).
alter table projection_offsets add column writer_epoch bigint not null default -1;

"""Training runs: the run-log format, written while training and read back, from our own run folders and
from TensorBoard event folders.

    config.json                  every hyper-parameter, data set, seed, hardware, code version, wall time
    metrics.jsonl                one JSON object per logged step: step, loss, lr, seconds, grad_norm, ...
    samples/step_XXXXXXX.png     sample grids saved during training
    checkpoints/step_XXXXXXX/    weights saved during training (EMA where there is EMA), each folder loadable on
                                 its own (checkpoints.py): config.json, scheduler_config.json, the safetensors
                                 weights and atlas.json

record.py    the record (`Run`) and the folder names; imports nothing of ours
writer.py    writes a run folder as training goes
ours.py      reads a run folder of ours
tensorboard.py  reads a folder of TensorBoard event files into a `Run`, again from where it stopped as it grows
events.py    an event file's records (TFRecord framing), read in chunks from an offset and checked (crc32c.py)
thinned.py   a series thinned while it is read: an even spread, the ends and the range, at most a cap
folders.py   which reader a folder needs (`RunReader`), the runs under a folder, and when a run changed on disk
checkpoints.py  a checkpoint folder's files, written as diffusers writes them
archive.py   a run (with the checkpoints a page training kept in memory) as a zip of its run folder

Nothing here is pickled; everything is JSON, PNG or safetensors. Every file a reader reads is opened once through
core/paths.open_inside with the roots its caller passes (a file leading out of them is a note, never read) and read
from that handle.
"""

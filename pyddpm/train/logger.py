"""The run's loss log: one JSON object per line in out/log.jsonl.

On resume, lines for steps after the checkpoint are dropped (they belong to work that was not saved and
is about to be redone), so the log of a resumed run reads like the log of one that never stopped.
"""

import json
from pathlib import Path

from pyddpm.fileio import append_json_line, atomic_write_text


class RunLog:
    def __init__(self, path, keep_through_step=0):
        self.path = Path(path)
        self.records = []
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    break  # a line cut short by a crash: everything from here on is discarded
                if record.get("step", 0) <= keep_through_step:
                    self.records.append(record)
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in self.records))

    def write(self, record):
        self.records.append(record)
        append_json_line(self.path, record)

    def last_loss(self):
        return self.records[-1]["loss"] if self.records else None

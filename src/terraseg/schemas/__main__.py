"""``python -m terraseg.schemas [FOLDER]``: write the JSON Schemas (default: into the package)."""

import sys

from terraseg.schemas import HERE, write_json_schemas

for path in write_json_schemas(sys.argv[1] if len(sys.argv) > 1 else HERE):
    print(path)

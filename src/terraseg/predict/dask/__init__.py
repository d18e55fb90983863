"""Prediction on a Dask cluster: many files, and scenes too large for one process, spread over workers.

``terraseg predict … --workers N`` (a ``distributed.LocalCluster`` of N single-threaded processes) or
``--scheduler tcp://HOST:PORT`` (an existing cluster: dask-jobqueue, Kubernetes, ``dask scheduler``)
run the same per-file work as the single-process run, so outputs, resume and the error report are
the same:

* :mod:`.cluster` – connecting (or starting a local cluster), the install hint without Dask;
* :mod:`.model` – the model goes to every worker once (a ``WorkerPlugin`` carrying the bundle or
  ONNX bytes), loaded there with the backend, device, precision and thread count asked for;
* :mod:`.blocks` – a scene cut into blocks of whole tile rows, each predicted with the tile rows
  above it that blend into its first rows, and written to its own GeoTIFF;
* :mod:`.join` – the block files fed, in the engine's own strips, to the usual file sinks, so the
  class raster, areas and polygons are those of a single-process run;
* :mod:`.tasks` – what runs on a worker (one file, one block, one join), failures as one line;
* :mod:`.run` – submission, resume, a progress bar over ``as_completed`` and the batch result.

Workers must see the inputs and the output folder at the same paths (a shared file system or
URLs); the model need not be there.
"""

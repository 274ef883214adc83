"""The gateway: radproof standing guard in front of a PACS (docs/gateway.md).

A DICOM C-STORE SCP that writes each instance durably to a spool before answering, checks it through
the one-image pipeline (:class:`radproof.pipeline.Checker`), and then forwards it to the archive or
holds it in a quarantine, as the policy in ``[gateway.actions]`` says. What happens to each instance
is recorded in a journal, so that a crash at any moment loses nothing and sends nothing twice.

- :mod:`~radproof.gateway.decision`: the pure decision (dataset, verdict, settings) -> action;
- :mod:`~radproof.gateway.spool`: durable files (fsync of the file and its folder), size limit;
- :mod:`~radproof.gateway.journal`: the state of every instance (SQLite, WAL);
- :mod:`~radproof.gateway.forwarder`: the upstream C-STORE SCU, associations reused, retries;
- :mod:`~radproof.gateway.server`: the SCP that ties them together;
- :mod:`~radproof.gateway.quarantine`: list, show, release, delete.
"""

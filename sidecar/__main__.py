from sidecar.cli.main import entry

entry()

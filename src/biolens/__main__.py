from biolens.cli.main import run

run()

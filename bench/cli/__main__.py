from bench.cli.main import app

app()

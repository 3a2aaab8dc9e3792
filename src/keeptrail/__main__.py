from keeptrail.cli.main import run

run()

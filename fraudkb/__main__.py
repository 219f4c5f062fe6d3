from fraudkb.cli import main

main()

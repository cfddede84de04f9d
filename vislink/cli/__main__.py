from vislink.cli import main

main()

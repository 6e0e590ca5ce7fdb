from by_framework.cli import main

main()

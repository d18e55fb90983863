from terraseg.cli import main

main()

from airpods.cli import main

main()

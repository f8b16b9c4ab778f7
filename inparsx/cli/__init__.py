"""The ``inparsx`` command line (Typer)."""


def entry() -> None:
    """Console-script entry point: Ctrl-C is handled from the first moment (even while the CLI's libraries are
    imported), then :func:`inparsx.cli.main.main` runs."""
    from inparsx import interrupts

    interrupts.install_handler()
    try:
        from inparsx.cli.main import main
    except KeyboardInterrupt:
        interrupts.report("start-up")
    main()

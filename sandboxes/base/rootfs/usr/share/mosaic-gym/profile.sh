# Sourced by the sandbox before each agent command (busybox sh prefers its
# applets to anything on PATH, so gaps are patched with shell functions here).

# find with GNU's -delete, which this busybox lacks: -delete becomes -depth plus
# an -exec that removes each file, and each directory once empty, as GNU does.
find() {
    case " $* " in *" -delete "*) ;; *) command find "$@"; return ;; esac
    (
        phase=options
        for arg do
            shift
            case "$phase:$arg" in
                options:-H|options:-L|options:-P) ;;
                options:*) phase=paths ;;
            esac
            if [ "$phase" = paths ]; then
                case "$arg" in -*|'('|'!') phase=expression; set -- "$@" -depth ;; esac
            fi
            if [ "$arg" = -delete ]; then
                set -- "$@" -exec sh -c 'status=0
for f do
    if [ -d "$f" ] && [ ! -L "$f" ]; then rmdir "$f" || status=1; else rm -f "$f" || status=1; fi
done
exit $status' find-delete {} +
            else
                set -- "$@" "$arg"
            fi
        done
        command find "$@"
    )
}

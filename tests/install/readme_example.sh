#!/bin/sh
# tests/install/readme_example.sh README.md - prints the C program of README.md that sits
# between <!-- readme-example:begin --> and <!-- readme-example:end -->, inside its ```c
# fence. check_install.sh builds it against an installed ignis; the Makefile builds it
# against the sanitized library for the sanitizer run's leak check.
exec awk '/<!-- readme-example:begin -->/ { inside = 1; next }
          /<!-- readme-example:end -->/   { inside = 0 }
          inside && /^```/                { fenced = !fenced; next }
          inside && fenced                { print }' "${1:?usage: readme_example.sh README.md}"

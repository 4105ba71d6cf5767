# Shared rules of the Makefiles that build tcemu's committed BPF objects (included by
# tests/testdata/Makefile, tests/testdata/{objects,helpers,netns}/Makefile,
# tests/datapath/bpf/Makefile and scenarios/programs/Makefile).
#
# The objects' bytes depend on the compiler, so only clang 19 is accepted: another major
# version would silently change committed test inputs. Each including Makefile keeps its own
# CFLAGS (they differ in -mcpu and include paths) and adds `| check-clang` to its rules.

CLANG ?= clang-19
CLANG_MAJOR_REQUIRED := 19
# <linux/types.h> includes <asm/types.h>, which Debian keeps in the multiarch include dir.
ARCH_INCLUDE ?= /usr/include/$(shell uname -m)-linux-gnu
# Keeps the build directory out of the DWARF/BTF strings, so the objects do not depend on
# where the repository is checked out.
PREFIX_MAP := -fdebug-prefix-map=$(CURDIR)=.

.DEFAULT_GOAL := all
.PHONY: all clean check-clang
.DELETE_ON_ERROR:

check-clang:
	@command -v $(CLANG) >/dev/null 2>&1 || \
		{ echo "error: $(CLANG) not found; install clang-$(CLANG_MAJOR_REQUIRED)" >&2; exit 1; }
	@major=$$($(CLANG) -dumpversion | cut -d. -f1); \
	if [ "$$major" != "$(CLANG_MAJOR_REQUIRED)" ]; then \
		echo "error: $(CLANG) reports major version $$major, but the committed objects" \
			"need clang $(CLANG_MAJOR_REQUIRED) (set CLANG=clang-$(CLANG_MAJOR_REQUIRED))" >&2; \
		exit 1; \
	fi

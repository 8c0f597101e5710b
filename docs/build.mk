# Man pages: docs/NAME.SECTION.pod -> $(BUILD)/man/NAME.SECTION (pod2man,
# from the Debian package perl), installed into $(PREFIX)/share/man/manN/.
#   make man            build them
#   make install-man    install them (make install does too)
#   make uninstall-man  remove exactly the files install-man wrote
MAN_PAGES := cbd-admin.8 cbd-backend.8 cbd-bench.1 cbd-status.1 cbd.ini.5 \
	cbdfs.1
MAN_FILES := $(addprefix $(BUILD)/man/,$(MAN_PAGES))
MANDIR ?= $(PREFIX)/share/man

# man_section PAGE: "8" for cbd-admin.8; man_name PAGE: CBD-ADMIN.
man_section = $(patsubst .%,%,$(suffix $(1)))
man_name = $(shell echo '$(basename $(1))' | tr a-z A-Z)

$(BUILD)/man/%: docs/%.pod
	$(call msg,POD2MAN,$@)
	@mkdir -p $(@D)
	$(Q)pod2man --errors=die --section=$(call man_section,$*) \
		--center=cbd --release="cbd $(VERSION)" \
		--name=$(call man_name,$*) $< $@

.PHONY: man install-man uninstall-man
man: $(MAN_FILES)

install-man: $(MAN_FILES)
	$(foreach p,$(MAN_PAGES),install -D -m 0644 $(BUILD)/man/$(p) \
		$(DESTDIR)$(MANDIR)/man$(call man_section,$(p))/$(p) &&) true

uninstall-man:
	rm -f $(foreach p,$(MAN_PAGES),$(DESTDIR)$(MANDIR)/man$(call man_section,$(p))/$(p))

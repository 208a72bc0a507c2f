"""SELinux profiles: CIL rendering (:mod:`.render`) and the container templates secprof ships
(:mod:`.shipped`, data in ``templates/``)."""

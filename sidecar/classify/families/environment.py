"""The launch environment: TLS, MPI launchers, command lines, container images, modules, builds."""

from __future__ import annotations

from sidecar.classify.families.rule import CAUSE, FamilyRule, HIGH, LOW, MEDIUM, P, T

RULES: tuple[FamilyRule, ...] = (
    # --- launch environment -------------------------------------------------------------------
    # a certificate the client does not trust fails every retry (before the download rules)
    FamilyRule("config.tls", r"(?i)CERTIFICATE_VERIFY_FAILED|certificate verify failed|self[- ]signed certificate in certificate chain",
               "config_error", P, CAUSE, MEDIUM, "TLS certificate verification failed: set the site's CA bundle (REQUESTS_CA_BUNDLE, SSL_CERT_FILE) in the job's environment"),
    FamilyRule("mpi.config", r"not enough slots available|(?:could not|unable to) (?:access or )?execute an executable|unable to launch the specified application|(?:requested|asked for) more (?:processes|slots|ranks) than",
               "config_error", P, CAUSE, MEDIUM, "the MPI launcher cannot start the job as configured: check the program path and the processes per node"),
    FamilyRule("config.arguments", r"^(?:\d+: ?)?(?:\[\w+\]: ?){0,2}[\w./-]+: error: (?:unrecognized arguments|argument |the following arguments are required|invalid choice|too few arguments|expected (?:one )?argument)",
               "config_error", P, CAUSE, HIGH, "the program refused its command line: fix the arguments in the config"),
    FamilyRule("env.image_access", r"(?i)pull access denied|repository does not exist|requested access to the resource is denied|unauthorized: authentication required|manifest unknown|manifest for \S+ not found|no such image|(?:pyxis|enroot|docker|podman|apptainer|singularity|registry|manifests?)\b.*(?:error code:? ?404\b|\b404 Not Found)",
               "env_error", P, CAUSE, MEDIUM, "the container image does not exist or needs credentials: check its name and the registry login"),
    FamilyRule("net.fetch", r"dial tcp \S+|\bi/o timeout\b|TLS handshake timeout|net/http: (?:request canceled|timeout)|Could not resolve host|Failed to connect to \S+ port \d+",
               "network", T, CAUSE, LOW, "a download failed on the network; retried on restart"),
    FamilyRule("env.container_pull", r"(?i)(?:pyxis|enroot|docker|podman|singularity|apptainer)\S*:? .*(?:(?:pull|import|download|registry)\S* .*(?:fail|error|timed? ?out)|(?:fail|error)\S* .*(?:pull|import|download|registry))",
               "env_error", T, CAUSE, LOW, "the container image could not be fetched; retried on restart"),
    FamilyRule("env.missing", r"(?i)command not found|bad interpreter|executable file not found in \$PATH|(?:was|were|is) buil[dt] without|(?:not|wasn't) (?:compiled|built) with\b|compiled without|: not found$|error while loading shared libraries|cannot open shared object file|undefined symbol|GLIBC\w* not found|version `\S+' not found|Lmod has detected the following error|module\(s\) (?:are|is) unknown|Unable to locate a modulefile|ModuleCmd_\w+.*ERROR|FATAL: +(?:could not open image|container creation failed|image)|image (?:not found|does not exist)|found no NVIDIA driver|exec format error|No module named|no such image|manifest unknown|Could not find a version that satisfies|No matching distribution found|python[\d.]*: (?:can't open file|Error while finding module)|(?:Unknown|unsupported|invalid) image (?:format|type)|^(?:\d+: )?FATAL: {2,}\S|(?:enroot|pyxis|apptainer|singularity)\S*: .*(?:Operation not permitted|Permission denied|user namespace|No such file or directory|failed to mount)|\[ERROR\] (?:No such file or directory|Command not found|Could not|Invalid|URL \S+ returned error code: 4(?:0\d|1\d|5\d))\b|Load of (?:requirement )?\S+ failed|Module (?:\S+ )?(?:conflicts with|cannot be loaded)|^(?:\S+: )?(?:source|\.|(?:/(?:usr/)?bin/)?(?:bash|sh|zsh|dash|ksh)): (?:line \d+: )?no such file or directory: |^(?:\S+: )?(?:/(?:usr/)?bin/)?(?:env|bash|sh|zsh|dash|ksh): (?:line \d+: )?.*(?:No such file or directory|Permission denied|cannot execute)|slurm_script: line \d+: .*(?:No such file or directory|Permission denied)",
               "env_error", P, CAUSE, MEDIUM, "the job's software environment is incomplete: check modules, the container image and PATH/LD_LIBRARY_PATH"),

    FamilyRule("env.build", r"\b(?:nvcc|gcc|g\+\+|c\+\+|clang\+*|cc1plus|collect2|ld|ninja|hipcc|cmake)(?: fatal| error)? *: *(?:fatal|error)\b|ninja: build stopped|\bld(?:\.\w+)?: cannot find -l\S+|\bptxas\b.*\b(?:error|fatal)\s*:|^(?:\S+: )?make(?:\[\d+\])?: \*\*\* .*\bError \d+|^error: command '\S+' failed with exit (?:code|status) \d+|Failed building wheel for|Could not build wheels for|Failed to build installable wheels|Unsupported gpu architecture|Error building extension|Error compiling objects for extension",
               "env_error", P, CAUSE, MEDIUM, "building a native extension failed: the compiler/CUDA toolkit in the job's environment does not fit this code or GPU"),

)

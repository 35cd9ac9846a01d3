"""The launch environment: TLS, command lines, container images and runtimes, modules, package managers, the loader, shells, builds."""

from __future__ import annotations

from sidecar.classify.families.rule import CAUSE, FamilyRule, HIGH, LOW, MEDIUM, P, T

RULES: tuple[FamilyRule, ...] = (
    # --- launch environment -------------------------------------------------------------------
    # a certificate the client does not trust fails every retry (before the download rules)
    FamilyRule("config.tls", r"(?i)CERTIFICATE_VERIFY_FAILED|certificate verify failed|self[- ]signed certificate in certificate chain",
               "config_error", P, CAUSE, MEDIUM, "TLS certificate verification failed: set the site's CA bundle (REQUESTS_CA_BUNDLE, SSL_CERT_FILE) in the job's environment"),
    # argparse: "<prog>: error: ..."; a subcommand's prog has the parent's usage in it ("accelerate <command> [<args>] launch")
    FamilyRule("config.arguments", r"^(?:\d+: ?)?(?:\[\w+\]: ?){0,2}[\w./-]+(?: [\w./<>\[\]-]+){0,4}: error: (?:unrecognized arguments|argument |the following arguments are required|invalid choice|too few arguments|expected (?:one )?argument)",
               "config_error", P, CAUSE, HIGH, "the program refused its command line: fix the arguments in the config"),
    # a registry or package index that limits or fails requests now: the same request works later
    # (before image_access and the exception reader; curl's own codes are collectives' net.curl)
    FamilyRule("net.unavailable", r"\btoomanyrequests\b|pull rate limit|returned error code: (?:429|5\d\d)\b|CondaHTTPError: HTTP (?:000|429|5\d\d)\b"
               # git and spack fetching over the network
               r"|^(?:\S+: )?fatal: (?:the remote end hung up unexpectedly|early EOF)|\bRPC failed; curl \d+|==> Error: FetchError\b|All fetchers failed",
               "network", T, CAUSE, MEDIUM, "a registry or package server could not be reached or refused for now (rate limit, server error); retried on restart"),
    FamilyRule("env.image_access", r"(?i)pull access denied|invalid reference format|did not resolve to an alias|no unqualified-search registries|repository does not exist|requested access to the resource is denied|unauthorized: authentication required|manifest unknown|manifest for \S+ not found|no such image|(?:pyxis|enroot|docker|podman|apptainer|singularity|registry|manifests?)\b.*(?:error code:? ?40[134]\b|\b40[134] (?:Not Found|Unauthorized|Forbidden))",
               "env_error", P, CAUSE, MEDIUM, "the container image does not exist or needs credentials: check its name and the registry login"),
    FamilyRule("net.fetch", r"dial tcp \S+|\bunable to resolve host address\b|\b[Rr]equest failed after \d+ retries|(?i:failed to (?:download|fetch) .*(?:network|timed? ?out|timeout))|\bi/o timeout\b|TLS handshake timeout|net/http: (?:request canceled|timeout)|Could not resolve host|Failed to connect to \S+ port \d+",
               "network", T, CAUSE, LOW, "a download failed on the network; retried on restart"),
    FamilyRule("env.container_pull", r"(?i)(?:pyxis|enroot|docker|podman|singularity|apptainer)\S*:? .*(?:(?:pull|import|download|registry)\S* .*(?:fail|error|timed? ?out)|(?:fail|error)\S* .*(?:pull|import|download|registry))",
               "env_error", T, CAUSE, LOW, "the container image could not be fetched; retried on restart"),
    # the node's own container plumbing (loop devices, GPU device files) failed: another node works
    FamilyRule("env.container_node", r"(?i)no loop devices? available|failed to (?:find|attach|set up|allocate|get) (?:a |free )?loop device|could not attach image file to loop device"
               r"|nvidia-container-cli: mount error: .*(?:/dev/nvidia|stat failed|no such device)|nvidia-container-cli: (?:initialization|detection) error: (?:driver rpc error|cuda error)",
               "node_failure", T, CAUSE, MEDIUM, "the node could not start the container (loop devices, GPU device files): restart excluding it"),
    # a container's CUDA needs a newer driver than the node has, or the container runtime has no GPU
    # support (NGC's entrypoint, nvidia-container-cli's cuda>= requirement, docker/podman's GPU
    # runtime and CDI); the CUDA runtime's and the frameworks' own texts are hardware's gpu.software
    FamilyRule("env.cuda_version", r"requirement error: unsatisfied condition: cuda"
               r"|please update your (?:GPU |NVIDIA )?driver to a newer version|built for NVIDIA Driver Release \S+ or later|compatibility mode is UNAVAILABLE"
               r"|could not select device driver \S* with capabilities: \[\[gpu\]\]|unknown or invalid runtime name: nvidia|unresolvable CDI devices?\b"
               r"|Loaded runtime CuDNN library: \S+ but source was compiled with",
               "env_error", P, CAUSE, MEDIUM, "the CUDA of the job's software (container, wheels) needs a newer NVIDIA driver than the nodes have, or the container runtime has no GPU support: use a build for the site's driver"),
    # a shell stops the job script on its own errors (set -u, syntax; dash's "N: cmd: not found")
    FamilyRule("shell.script", r"^(?:\S+: )?(?:\S*/)?[\w.-]+: line \d+: (?:.*: )?(?:unbound variable|parameter (?:null or )?not set|bad substitution|ambiguous redirect|readonly variable"
               r"|syntax error\b|unexpected EOF while looking for matching|cannot execute binary file|.*\(error token is |.*: not a valid identifier|\w+: .*: invalid option name)"
               r"|^(?:\S+: )?(?:/bin/)?(?:sh|dash): \d+: (?:\S+: not found|Syntax error:|cannot open \S+: No such file|Can't open )",
               "config_error", P, CAUSE, MEDIUM, "the job script has an error the shell stops on: fix the script (a variable it needs, its syntax)"),
    # coreutils in the job script: a path it reads or writes is missing or not writable (low: a script
    # without `set -e` goes on; "mkdir: ... File exists" is harmless; EIO, EROFS, ENOSPC are storage's)
    FamilyRule("shell.path", r"^(?:\S+: )?(?:cp|mv|ln|mkdir|tee|touch|chmod|install|timeout|nohup|stdbuf|nice|numactl|taskset|xargs): .*: (?:No such file or directory|Permission denied|Not a directory)\s*$",
               "config_error", P, CAUSE, LOW, "a path the job script uses does not exist or cannot be written: create it or fix the path in the script"),
    FamilyRule("env.missing", r"(?i)command not found|bad interpreter|executable file not found in \$PATH|(?:was|were|is) buil[dt] without|(?:not|wasn't) (?:compiled|built) with\b|compiled without|: not found$|error while loading shared libraries|cannot open shared object file|undefined symbol|GLIBC\w* not found|version `\S+' not found|Lmod has detected the following error|module\(s\) (?:are|is) unknown|Unable to locate a modulefile|ModuleCmd_\w+.*ERROR|FATAL: +(?:could not open image|container creation failed|image)|image (?:not found|does not exist)|found no NVIDIA driver|exec format error|No module named|no such image|manifest unknown|Could not find a version that satisfies|No matching distribution found|Could not solve for environment specs|UnsatisfiableError|ResolvePackageNotFound|PackagesNotFoundError|packages are not available from current channels|no sub[ug]id ranges|(?:mapping )?entry (?:found )?in /etc/sub[ug]id|could not use fakeroot|new[ug]idmap\b.*(?:fail|exit status|not found)|python[\d.]*: (?:can't open file|Error while finding module)|(?:Unknown|unsupported|invalid) image (?:format|type)|^(?:\d+: )?FATAL: {2,}\S|(?:enroot|pyxis|apptainer|singularity)\S*: .*(?:Operation not permitted|Permission denied|user namespace|No such file or directory|failed to mount)|\[ERROR\] (?:No such file or directory|Command not found|Could not|Invalid|URL \S+ returned error code: 4(?:0\d|1\d|5\d))\b|Load of (?:requirement )?\S+ failed|Module (?:\S+ )?(?:conflicts with|cannot be loaded)|^(?:\S+: )?(?:source|\.|(?:/(?:usr/)?bin/)?(?:bash|sh|zsh|dash|ksh)): (?:line \d+: )?no such file or directory: |^(?:\S+: )?(?:/(?:usr/)?bin/)?(?:env|bash|sh|zsh|dash|ksh): (?:line \d+: )?.*(?:No such file or directory|Permission denied|cannot execute)|slurm_script: line \d+: .*(?:No such file or directory|Permission denied)"
               # pip/uv/venv refusing the environment they were given
               r"|conflicting dependencies|ResolutionImpossible|externally-managed-environment|requires a different Python|No virtual environment found|ensurepip is not available|No solution found when resolving"
               # Tcl modules' file check, spack's load, nvidia-container-cli's setup, the OpenMP runtimes' fatal errors
               r"|Magic cookie '#%Module' missing|matches no installed packages|nvidia-container-cli: (?:container|ldcache) error: |\bOMP: Error #\d+:|libgomp: Invalid value for environment variable"
               # mamba's fatal level; pip's and uv's refusals of a requirement or a platform; the loader's own failures;
               # an interpreter that cannot start (PYTHONHOME/PYTHONPATH)
               r"|\bcritical +libmamba\b|Invalid requirement: |doesn't have a source distribution or wheel|is not a supported wheel on this platform"
               r"|Inconsistency detected by ld\.so|: relocation error: |Fatal Python error: (?:init_\w+|Py_Initialize\w*|pyinit_\w+|_Py_InitializeMain)\b"
               # an extension built against another NumPy's ABI; pyenv; Singularity 2's error level; a toolkit
               # variable the build needs (GPU libraries' loaders are hardware's gpu.software)
               r"|compiled using NumPy \S+ cannot be run in NumPy|module compiled against (?:ABI|API) version \S+ but this version of numpy"
               r"|pyenv: version \S+ is not installed|^(?:\S+: )?ERROR {2}: \S|\benvironment variable \S+ (?:is )?not set|\b[A-Z][A-Z_]{3,} environment variable is not set",
               "env_error", P, CAUSE, MEDIUM, "the job's software environment is incomplete: check modules, the container image and PATH/LD_LIBRARY_PATH"),

    # git refusing what the job script asks (a clone into an existing directory, a repository or ref that does not
    # exist; not "not a git repository": programs ask git for a commit to log and go on)
    FamilyRule("env.git", r"^(?:\S+: )?fatal: (?:destination path .* already exists|repository \S+ not found|Authentication failed for|could not read Username|pathspec .* did not match|reference is not a tree|couldn't find remote ref)",
               "config_error", P, CAUSE, MEDIUM, "git refused what the job script asks: fix the repository, path or ref (or make the clone idempotent)"),
    FamilyRule("env.build", r"\bnvrtc: error:|\b(?:nvcc|gcc|g\+\+|c\+\+|clang\+*|cc1plus|collect2|ld|ninja|hipcc|cmake)(?: fatal| error)? *: *(?:fatal|error)\b|ninja: build stopped|\bld(?:\.\w+)?: cannot find -l\S+|\bptxas\b.*\b(?:error|fatal)\s*:|^(?:\S+: )?make(?:\[\d+\])?: \*\*\* .*\bError \d+|^error: command '\S+' failed with exit (?:code|status) \d+|Failed building wheel for|Could not build wheels for|Failed to build installable wheels|Unsupported gpu architecture|Error building extension|Error compiling objects for extension",
               "env_error", P, CAUSE, MEDIUM, "building a native extension failed: the compiler/CUDA toolkit in the job's environment does not fit this code or GPU"),

)

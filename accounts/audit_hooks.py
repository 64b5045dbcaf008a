"""Where security-relevant events are reported. The audit log (issue 7) records them; until then
they go to the security logger."""

import logging

logger = logging.getLogger("console.security")


def permission_refused(request, organization, permission):
    logger.warning(
        "permission refused: user=%s org=%s permission=%s path=%s",
        request.user.pk,
        organization.pk,
        permission,
        request.path,
    )

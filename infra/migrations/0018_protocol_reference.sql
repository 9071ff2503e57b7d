-- The protocol template's reference image, kept in the photo store like the
-- ballot's (elections.ballot_reference_sha256): the workers that read protocol
-- photos rebuild the template folder from the database and the store
-- (api.elections.service.protocol_template). NULL: no protocol template, or one
-- loaded before this column existed (load the election folder again).
-- depends: 0016_protocols

SET LOCAL lock_timeout = '5s';
ALTER TABLE elections ADD COLUMN protocol_reference_sha256 text;
